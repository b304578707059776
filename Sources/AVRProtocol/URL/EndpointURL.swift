/// A parsed `scheme://[userinfo@]host[:port][/path][?query][#fragment]` URL for the
/// endpoints avr-core connects to (STS, webhook). Only what a client needs to open a
/// connection and write its request line: no relative references, no normalisation of
/// the path or query (they are sent as written).
package struct EndpointURL: Sendable, Equatable, CustomStringConvertible {
    package enum Scheme: String, Sendable, CaseIterable {
        case ws, wss, http, https

        package var defaultPort: Int {
            switch self {
            case .ws, .http: 80
            case .wss, .https: 443
            }
        }

        /// Whether the connection must be wrapped in TLS.
        package var usesTLS: Bool { self == .wss || self == .https }

        /// Whether the endpoint speaks WebSocket (otherwise plain HTTP).
        package var isWebSocket: Bool { self == .ws || self == .wss }
    }

    /// Lowercased.
    package let scheme: Scheme
    /// The part before `@`, as written (percent-escapes not decoded); nil when absent.
    /// Parsed so that it can be refused or turned into credentials by the caller, never
    /// silently sent as part of the host.
    package let userinfo: String?
    /// The host as written; an IPv6 literal without its brackets (`::1`).
    package let host: String
    package let isIPv6: Bool
    /// The port to connect to: the explicit one, else the scheme's default.
    package let port: Int
    /// Whether the URL spelled a port (then `Host:` repeats it, even a default one).
    package let hasExplicitPort: Bool
    /// Empty or starting with `/`, as written.
    package let path: String
    /// The text after `?` (without it), nil when the URL has no `?`.
    package let query: String?
    /// The text after `#`, nil when absent; never sent to the server.
    package let fragment: String?

    /// What goes in the request line: the path (`/` when empty) and the query.
    package var requestTarget: String {
        let root = path.isEmpty ? "/" : path
        guard let query else { return root }
        return root + "?" + query
    }

    /// The `Host:` header value: the host (bracketed when IPv6), plus `:port` when the URL
    /// spelled one.
    package var hostHeader: String {
        let name = isIPv6 ? "[" + host + "]" : host
        return hasExplicitPort ? name + ":" + String(port) : name
    }

    /// The URL again, with the scheme lowercased.
    package var description: String {
        var text = scheme.rawValue + "://"
        if let userinfo { text += userinfo + "@" }
        text += hostHeader + path
        if let query { text += "?" + query }
        if let fragment { text += "#" + fragment }
        return text
    }

    /// Parses `text`; the error says what is wrong in words an operator understands.
    package static func parse(_ text: String) throws(EndpointURLError) -> EndpointURL {
        let bytes = Array(text.utf8)
        if let bad = bytes.firstIndex(where: { $0 <= 0x20 || $0 >= 0x7F }) {
            throw .invalidCharacter(offset: bad)
        }
        guard let colon = bytes.firstIndex(of: UInt8(ascii: ":")), colon > 0,
            isAlpha(bytes[0]), bytes[..<colon].allSatisfy(isSchemeCharacter),
            bytes.count - colon >= 3, bytes[colon + 1] == UInt8(ascii: "/"), bytes[colon + 2] == UInt8(ascii: "/")
        else { throw .missingScheme }
        let schemeName = string(bytes[..<colon]).lowercased()
        guard let scheme = Scheme(rawValue: schemeName) else { throw .unknownScheme(schemeName) }

        let authorityStart = colon + 3
        let authorityEnd = bytes[authorityStart...].firstIndex(where: {
            $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "?") || $0 == UInt8(ascii: "#")
        }) ?? bytes.count
        var rest = bytes[authorityEnd...]
        var fragment: String?
        if let hash = rest.firstIndex(of: UInt8(ascii: "#")) {
            fragment = string(rest[(hash + 1)...])
            rest = rest[..<hash]
        }
        var query: String?
        if let question = rest.firstIndex(of: UInt8(ascii: "?")) {
            query = string(rest[(question + 1)...])
            rest = rest[..<question]
        }

        var hostAndPort = bytes[authorityStart..<authorityEnd]
        var userinfo: String?
        if let at = hostAndPort.lastIndex(of: UInt8(ascii: "@")) {
            let info = hostAndPort[..<at]
            guard info.allSatisfy(isUserinfoCharacter) else { throw .invalidUserinfo }
            userinfo = string(info)
            hostAndPort = hostAndPort[(at + 1)...]
        }

        let host: ArraySlice<UInt8>
        let isIPv6: Bool
        var portText: ArraySlice<UInt8>?
        if hostAndPort.first == UInt8(ascii: "[") {
            guard let close = hostAndPort.firstIndex(of: UInt8(ascii: "]")) else {
                throw .invalidHost(string(hostAndPort))
            }
            host = hostAndPort[(hostAndPort.startIndex + 1)..<close]
            isIPv6 = true
            guard !host.isEmpty else { throw .emptyHost }
            guard isValidIPv6Literal(host) else {
                throw .invalidHost(string(hostAndPort[...close]))
            }
            let afterHost = hostAndPort[(close + 1)...]
            if let first = afterHost.first {
                guard first == UInt8(ascii: ":") else { throw .invalidHost(string(hostAndPort)) }
                portText = afterHost.dropFirst()
            }
        } else {
            if let portColon = hostAndPort.firstIndex(of: UInt8(ascii: ":")) {
                host = hostAndPort[..<portColon]
                portText = hostAndPort[(portColon + 1)...]
            } else {
                host = hostAndPort
            }
            isIPv6 = false
            guard !host.isEmpty else { throw .emptyHost }
            guard host.allSatisfy(isHostCharacter) else { throw .invalidHost(string(host)) }
        }

        var port = scheme.defaultPort
        if let portText {
            guard let value = parsePort(portText) else { throw .invalidPort(string(portText)) }
            port = value
        }
        return EndpointURL(
            scheme: scheme, userinfo: userinfo, host: string(host), isIPv6: isIPv6, port: port,
            hasExplicitPort: portText != nil, path: string(rest), query: query, fragment: fragment)
    }

    /// 1 to 5 decimal digits, 1...65535; nil otherwise.
    static func parsePort(_ digits: some Collection<UInt8>) -> Int? {
        guard (1...5).contains(digits.count) else { return nil }
        var value = 0
        for byte in digits {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            value = value * 10 + Int(byte - UInt8(ascii: "0"))
        }
        return (1...65535).contains(value) ? value : nil
    }

    /// RFC 3986 `scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )`.
    static func isSchemeCharacter(_ byte: UInt8) -> Bool {
        isAlpha(byte) || isDigit(byte) || byte == UInt8(ascii: "+") || byte == UInt8(ascii: "-")
            || byte == UInt8(ascii: ".")
    }
}

/// Why a URL was refused.
package enum EndpointURLError: Error, Sendable, Equatable, CustomStringConvertible {
    case missingScheme
    case unknownScheme(String)
    /// A space, control or non-ASCII byte at this offset (such a URL cannot go in a
    /// request line; percent-encode it).
    case invalidCharacter(offset: Int)
    case invalidUserinfo
    case emptyHost
    case invalidHost(String)
    case invalidPort(String)

    package var description: String {
        switch self {
        case .missingScheme: "missing scheme (expected ws://, wss://, http:// or https://)"
        case .unknownScheme(let name): "unknown scheme \"\(name)\" (expected ws, wss, http or https)"
        case .invalidCharacter(let offset): "space, control or non-ASCII character at byte \(offset)"
        case .invalidUserinfo: "invalid characters before '@'"
        case .emptyHost: "empty host"
        case .invalidHost(let host): "invalid host \"\(host)\""
        case .invalidPort(let port): "\"\(port)\" is not a port (1-65535)"
        }
    }
}

private func string(_ bytes: ArraySlice<UInt8>) -> String {
    String(decoding: bytes, as: UTF8.self)
}

private func isAlpha(_ byte: UInt8) -> Bool {
    (byte | 0x20) >= UInt8(ascii: "a") && (byte | 0x20) <= UInt8(ascii: "z")
}

private func isDigit(_ byte: UInt8) -> Bool {
    byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")
}

/// Names and IPv4 addresses: unreserved characters and percent-escapes.
private func isHostCharacter(_ byte: UInt8) -> Bool {
    PercentEncoding.isUnreserved(byte) || byte == UInt8(ascii: "%")
}

/// Hex digits, `:` and `.` (an embedded IPv4 address), then optionally a zone after `%`
/// (`fe80::1%25eth0`); at least one `:`.
private func isValidIPv6Literal(_ bytes: ArraySlice<UInt8>) -> Bool {
    let zoneStart = bytes.firstIndex(of: UInt8(ascii: "%")) ?? bytes.endIndex
    let address = bytes[..<zoneStart]
    let zone = bytes[zoneStart...].dropFirst()
    let isAddressCharacter: (UInt8) -> Bool = { byte in
        isDigit(byte) || ((byte | 0x20) >= UInt8(ascii: "a") && (byte | 0x20) <= UInt8(ascii: "f"))
            || byte == UInt8(ascii: ":") || byte == UInt8(ascii: ".")
    }
    return address.contains(UInt8(ascii: ":")) && address.allSatisfy(isAddressCharacter)
        && (zoneStart == bytes.endIndex || (!zone.isEmpty && zone.allSatisfy(isHostCharacter)))
}

/// RFC 3986 `userinfo = *( unreserved / pct-encoded / sub-delims / ":" )`.
private func isUserinfoCharacter(_ byte: UInt8) -> Bool {
    if PercentEncoding.isUnreserved(byte) { return true }
    switch byte {
    case UInt8(ascii: "%"), UInt8(ascii: ":"), UInt8(ascii: "!"), UInt8(ascii: "$"), UInt8(ascii: "&"),
        UInt8(ascii: "'"), UInt8(ascii: "("), UInt8(ascii: ")"), UInt8(ascii: "*"), UInt8(ascii: "+"),
        UInt8(ascii: ","), UInt8(ascii: ";"), UInt8(ascii: "="):
        return true
    default:
        return false
    }
}
