import Testing
@testable import AVRProtocol

private let seedPayload: JSONObject = [
    "from": "2000", "to": "5001", "uniqueid": "1770758888.32", "channel": "PJSIP/2000-00000013",
]

/// Decodes `%XX` escapes; nil if an escape is malformed or lowercase.
private func percentDecode(_ text: String) -> [UInt8]? {
    var out: [UInt8] = []
    var bytes = Array(text.utf8)[...]
    while let byte = bytes.popFirst() {
        if byte != UInt8(ascii: "%") {
            guard PercentEncoding.isUnreserved(byte) else { return nil }
            out.append(byte)
            continue
        }
        guard bytes.count >= 2 else { return nil }
        let hex = String(decoding: bytes.prefix(2), as: UTF8.self)
        guard hex == hex.uppercased(), let value = UInt8(hex, radix: 16) else { return nil }
        out.append(value)
        bytes = bytes.dropFirst(2)
    }
    return out
}

@Suite struct EffectiveSTSURLTests {
    @Test func seedExampleByteForByte() {
        let url = EffectiveSTSURL.make(base: "ws://localhost:6030", payload: seedPayload)
        #expect(url == "ws://localhost:6030/?from=2000&to=5001&uniqueid=1770758888.32&channel=PJSIP%2F2000-00000013")
    }

    @Test func seedExampleFromParsedBody() throws {
        let body = try JSONValue.parse(Array(#"{"uuid":"935652e3-7c59-4edc-b17f-9646a9c2a265","payload":{"from":"2000","to":"5001","uniqueid":"1770758888.32","channel":"PJSIP/2000-00000013"}}"#.utf8))
        let payload = try #require(body["payload"]?.objectValue)
        #expect(EffectiveSTSURL.make(base: "ws://localhost:6030", payload: payload)
            == "ws://localhost:6030/?from=2000&to=5001&uniqueid=1770758888.32&channel=PJSIP%2F2000-00000013")
    }

    @Test(arguments: [
        ("ws://h:1/sts", "ws://h:1/sts?a=1"),
        ("ws://h:1/sts/", "ws://h:1/sts/?a=1"),
        ("ws://localhost:6030?uuid=abc", "ws://localhost:6030/?uuid=abc&a=1"),
        ("ws://h/p?x=1&y=2", "ws://h/p?x=1&y=2&a=1"),
        ("ws://h/p?", "ws://h/p?a=1"),
        ("ws://h?", "ws://h/?a=1"),
        ("ws://h/p?x=1&", "ws://h/p?x=1&a=1"),
        ("ws://h/p#frag", "ws://h/p?a=1#frag"),
        ("ws://h#frag", "ws://h/?a=1#frag"),
        ("ws://h?q=1#f#g", "ws://h/?q=1&a=1#f#g"),
        ("ws://h?next=http://x/y", "ws://h/?next=http://x/y&a=1"),
        ("http://[::1]:8080", "http://[::1]:8080/?a=1"),
        ("WS://Host", "WS://Host/?a=1"),
        ("not a url", "not a url?a=1"),
    ])
    func baseShapes(base: String, expected: String) {
        #expect(EffectiveSTSURL.make(base: base, payload: ["a": "1"]) == expected)
    }

    @Test(arguments: [
        ("ws://localhost:6030", "ws://localhost:6030/"),
        ("ws://h?x=1", "ws://h/?x=1"),
        ("ws://h/p", "ws://h/p"),
        ("ws://h/p?", "ws://h/p?"),
        ("ws://h#f", "ws://h/#f"),
    ])
    func emptyPayloadOnlyNormalisesThePath(base: String, expected: String) {
        #expect(EffectiveSTSURL.make(base: base, payload: [:]) == expected)
    }

    @Test(arguments: [
        ("a b", "a%20b"),
        ("x&y=z?/+%#", "x%26y%3Dz%3F%2F%2B%25%23"),
        ("AZaz09-._~", "AZaz09-._~"),
        ("!*'()@:;,$[]", "%21%2A%27%28%29%40%3A%3B%2C%24%5B%5D"),
        ("é", "%C3%A9"),
        ("😀", "%F0%9F%98%80"),
        ("€", "%E2%82%AC"),
        ("\n\u{0}\u{7F}", "%0A%00%7F"),
        ("", ""),
    ])
    func percentEncoding(raw: String, encoded: String) {
        #expect(PercentEncoding.encode(raw) == encoded)
        #expect(EffectiveSTSURL.make(base: "ws://h/", payload: [raw: .string(raw)]) == "ws://h/?\(encoded)=\(encoded)")
    }

    @Test func everyByteEncodesToUnreservedOrUppercaseEscapeAndDecodesBack() {
        for scalar in (0...0x7F).compactMap(Unicode.Scalar.init) + ["é", "\u{10FFFF}", "😀"] {
            let text = String(Character(scalar))
            let encoded = PercentEncoding.encode(text)
            #expect(percentDecode(encoded) == Array(text.utf8), "\(encoded)")
        }
    }

    @Test func nonStringValues() throws {
        let payload = try #require(try JSONValue.parse(Array(
            #"{"n":42,"f":-1.5e3,"t":true,"b":false,"z":null,"o":{"a":[1,"x"]},"arr":[1,2],"e":[]}"#.utf8)).objectValue)
        #expect(EffectiveSTSURL.make(base: "ws://h", payload: payload)
            == "ws://h/?n=42&f=-1.5e3&t=true&b=false&z=&o=%7B%22a%22%3A%5B1%2C%22x%22%5D%7D&arr=%5B1%2C2%5D&e=%5B%5D")
    }

    @Test func duplicateKeysAndOrderAreKeptAsWritten() throws {
        let payload = try #require(try JSONValue.parse(Array(#"{"z":"1","a":"2","z":"3"}"#.utf8)).objectValue)
        #expect(EffectiveSTSURL.make(base: "ws://h", payload: payload) == "ws://h/?z=1&a=2&z=3")
    }

    @Test func queryTextOfEachKind() {
        #expect(EffectiveSTSURL.queryText(of: "a/b") == "a/b")
        #expect(EffectiveSTSURL.queryText(of: .number("1e3")) == "1e3")
        #expect(EffectiveSTSURL.queryText(of: true) == "true")
        #expect(EffectiveSTSURL.queryText(of: nil) == "")
        #expect(EffectiveSTSURL.queryText(of: ["k": "v"]) == #"{"k":"v"}"#)
    }
}
