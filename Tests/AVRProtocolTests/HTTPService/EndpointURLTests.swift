import Testing
@testable import AVRProtocol

private func parseError(_ text: String) -> EndpointURLError? {
    do {
        _ = try EndpointURL.parse(text)
        return nil
    } catch {
        return error
    }
}

@Suite struct EndpointURLTests {
    @Test func stsURLWithPort() throws {
        let url = try EndpointURL.parse("ws://localhost:6030")
        #expect(url.scheme == .ws)
        #expect(url.host == "localhost")
        #expect(url.port == 6030)
        #expect(url.hasExplicitPort)
        #expect(url.path == "")
        #expect(url.query == nil)
        #expect(url.requestTarget == "/")
        #expect(url.hostHeader == "localhost:6030")
        #expect(url.description == "ws://localhost:6030")
    }

    @Test func everyPartAndTheSchemeLowercased() throws {
        let url = try EndpointURL.parse("WS://Example.com/a/b?x=1&y=%20#frag")
        #expect(url.scheme == .ws)
        #expect(url.host == "Example.com")
        #expect(url.port == 80)
        #expect(!url.hasExplicitPort)
        #expect(url.path == "/a/b")
        #expect(url.query == "x=1&y=%20")
        #expect(url.fragment == "frag")
        #expect(url.requestTarget == "/a/b?x=1&y=%20")
        #expect(url.hostHeader == "Example.com")
        #expect(url.description == "ws://Example.com/a/b?x=1&y=%20#frag")
    }

    @Test(arguments: [
        ("ws://h", EndpointURL.Scheme.ws, 80, "h", "/"),
        ("wss://h", .wss, 443, "h", "/"),
        ("http://h/", .http, 80, "h", "/"),
        ("HTTPS://h/x", .https, 443, "h", "/x"),
        ("https://h:443/", .https, 443, "h:443", "/"),
        ("http://h:80", .http, 80, "h:80", "/"),
        ("http://h:8080?", .http, 8080, "h:8080", "/?"),
        ("ws://h?uuid=x", .ws, 80, "h", "/?uuid=x"),
        ("http://127.0.0.1:1/events", .http, 1, "127.0.0.1:1", "/events"),
        ("http://my-host.example_1.test:65535", .http, 65535, "my-host.example_1.test:65535", "/"),
        ("http://[::1]:9000/events", .http, 9000, "[::1]:9000", "/events"),
        ("ws://[2001:db8::1]", .ws, 80, "[2001:db8::1]", "/"),
        ("ws://[::ffff:192.0.2.1]/", .ws, 80, "[::ffff:192.0.2.1]", "/"),
        ("ws://[fe80::1%25eth0]:7/", .ws, 7, "[fe80::1%25eth0]:7", "/"),
        ("http://user:pa%20ss@h:81/", .http, 81, "h:81", "/"),
        ("http://h:00080", .http, 80, "h:80", "/"),
    ])
    func accepted(text: String, scheme: EndpointURL.Scheme, port: Int, hostHeader: String, target: String) throws {
        let url = try EndpointURL.parse(text)
        #expect(url.scheme == scheme)
        #expect(url.port == port)
        #expect(url.hostHeader == hostHeader)
        #expect(url.requestTarget == target)
    }

    @Test func ipv6AndUserinfoParts() throws {
        let url = try EndpointURL.parse("http://user:secret@[::1]:9000/x")
        #expect(url.userinfo == "user:secret")
        #expect(url.host == "::1")
        #expect(url.isIPv6)
        #expect(url.description == "http://user:secret@[::1]:9000/x")
        #expect(try EndpointURL.parse("http://h/").userinfo == nil)
        #expect(try EndpointURL.parse("http://@h/").userinfo == "")
    }

    @Test(arguments: [
        ("", EndpointURLError.missingScheme),
        ("localhost:6030", .missingScheme),
        ("localhost", .missingScheme),
        ("ws:/h", .missingScheme),
        ("ws:h", .missingScheme),
        ("//h", .missingScheme),
        ("://h", .missingScheme),
        ("1ws://h", .missingScheme),
        ("ftp://h", .unknownScheme("ftp")),
        ("WSS2://h", .unknownScheme("wss2")),
        ("file:///etc/passwd", .unknownScheme("file")),
        ("ws://", .emptyHost),
        ("ws://:80", .emptyHost),
        ("ws:///path", .emptyHost),
        ("ws://?q", .emptyHost),
        ("ws://user@", .emptyHost),
        ("http://[]/", .emptyHost),
        ("ws://h:0", .invalidPort("0")),
        ("ws://h:65536", .invalidPort("65536")),
        ("ws://h:99999/", .invalidPort("99999")),
        ("ws://h:123456", .invalidPort("123456")),
        ("ws://h:-1", .invalidPort("-1")),
        ("ws://h:abc", .invalidPort("abc")),
        ("ws://h:", .invalidPort("")),
        ("ws://h:80:81", .invalidPort("80:81")),
        ("ws://h:+80", .invalidPort("+80")),
        ("ws://us er@h", .invalidCharacter(offset: 7)),
        ("ws://h/a b", .invalidCharacter(offset: 8)),
        (" ws://h", .invalidCharacter(offset: 0)),
        ("ws://h\n", .invalidCharacter(offset: 6)),
        ("ws://h\t/", .invalidCharacter(offset: 6)),
        ("ws://hé/", .invalidCharacter(offset: 6)),
        ("ws://h/\u{7F}", .invalidCharacter(offset: 7)),
        ("ws://a<b@h", .invalidUserinfo),
        ("ws://a\"b@h", .invalidUserinfo),
        ("ws://ho!st/", .invalidHost("ho!st")),
        ("ws://ho<st", .invalidHost("ho<st")),
        ("http://[::1", .invalidHost("[::1")),
        ("http://[::1]x", .invalidHost("[::1]x")),
        ("http://[1.2.3.4]/", .invalidHost("[1.2.3.4]")),
        ("http://[g::1]/", .invalidHost("[g::1]")),
        ("http://[fe80::1%]/", .invalidHost("[fe80::1%]")),
    ])
    func refused(text: String, error: EndpointURLError) {
        #expect(parseError(text) == error)
    }

    @Test func errorDescriptions() {
        #expect(parseError("localhost:6030")?.description == "missing scheme (expected ws://, wss://, http:// or https://)")
        #expect(parseError("ftp://h")?.description == #"unknown scheme "ftp" (expected ws, wss, http or https)"#)
        #expect(parseError("ws://h:70000")?.description == #""70000" is not a port (1-65535)"#)
        #expect(parseError("ws://")?.description == "empty host")
        #expect(parseError("ws://h/a b")?.description == "space, control or non-ASCII character at byte 8")
    }

    @Test func schemeProperties() {
        #expect(EndpointURL.Scheme.allCases.map(\.defaultPort) == [80, 443, 80, 443])
        #expect(EndpointURL.Scheme.allCases.map(\.usesTLS) == [false, true, false, true])
        #expect(EndpointURL.Scheme.allCases.map(\.isWebSocket) == [true, true, false, false])
    }
}
