/// `REDIS_URL`: `redis://[[user]:password@]host[:port][/db]`. No TLS (`rediss://` is refused
/// like `wss://`), no query. The password is kept out of `description` (it goes to logs).
package struct RedisURL: Sendable, Equatable, CustomStringConvertible {
    package var host: String
    package var port: Int
    package var password: String?
    package var database: Int

    package init(host: String, port: Int = 6379, password: String? = nil, database: Int = 0) {
        self.host = host
        self.port = port
        self.password = password
        self.database = database
    }

    /// What a log line may show: the password replaced by `***`.
    package var description: String {
        "redis://" + (password == nil ? "" : ":***@") + hostForURL + ":\(port)" + (database == 0 ? "" : "/\(database)")
    }

    private var hostForURL: String { host.contains(":") ? "[\(host)]" : host }

    /// Why a text is not a usable Redis URL (the message never repeats the password).
    package struct ParseError: Error, Sendable, Equatable, CustomStringConvertible {
        package let reason: String
        package var description: String { reason }
    }

    package static func parse(_ text: String) throws(ParseError) -> RedisURL {
        let prefix = "redis://"
        guard text.hasPrefix(prefix) else {
            if text.hasPrefix("rediss://") { throw ParseError(reason: "rediss:// (TLS) is not supported; use redis://") }
            throw ParseError(reason: "must start with redis://")
        }
        var rest = Substring(text.dropFirst(prefix.count))
        var password: String?
        if let at = rest.lastIndex(of: "@") {
            let userinfo = rest[..<at]
            rest = rest[rest.index(after: at)...]
            // `:password` or `user:password` (Redis 6 ACL users are not sent: AUTH <password> only).
            if let colon = userinfo.firstIndex(of: ":") {
                let secret = userinfo[userinfo.index(after: colon)...]
                guard let decoded = PercentDecoding.decode(secret) else {
                    throw ParseError(reason: "the password has a bad percent-escape")
                }
                password = decoded
            } else if !userinfo.isEmpty {
                guard let decoded = PercentDecoding.decode(userinfo) else {
                    throw ParseError(reason: "the password has a bad percent-escape")
                }
                password = decoded
            }
            if password?.isEmpty == true { password = nil }
        }
        var database = 0
        if let slash = rest.firstIndex(of: "/") {
            let path = rest[rest.index(after: slash)...]
            rest = rest[..<slash]
            if !path.isEmpty {
                guard path.utf8.count <= 5, path.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }), let number = Int(path) else {
                    throw ParseError(reason: "the database (after /) must be a number 0-99999")
                }
                database = number
            }
        }
        if rest.contains("?") || rest.contains("#") { throw ParseError(reason: "no query or fragment is allowed") }
        var host: Substring
        var portText: Substring?
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { throw ParseError(reason: "unclosed [ in the host") }
            host = rest[rest.index(after: rest.startIndex)..<close]
            let after = rest[rest.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw ParseError(reason: "unexpected text after the host") }
                portText = after.dropFirst()
            }
        } else if let colon = rest.lastIndex(of: ":") {
            host = rest[..<colon]
            portText = rest[rest.index(after: colon)...]
        } else {
            host = rest
        }
        guard !host.isEmpty else { throw ParseError(reason: "the host is missing") }
        guard host.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "/") }) else {
            throw ParseError(reason: "the host has characters a host name cannot have")
        }
        var port = 6379
        if let portText {
            guard let parsed = EndpointURL.parsePort(portText.utf8) else {
                throw ParseError(reason: "the port must be 1-65535")
            }
            port = parsed
        }
        return RedisURL(host: String(host), port: port, password: password, database: database)
    }
}

/// Percent-decoding of a URL component (the Redis password).
enum PercentDecoding {
    static func decode(_ text: Substring) -> String? {
        var bytes: [UInt8] = []
        var iterator = Array(text.utf8)[...]
        while let byte = iterator.popFirst() {
            if byte == UInt8(ascii: "%") {
                guard iterator.count >= 2, let high = hex(iterator.popFirst()!), let low = hex(iterator.popFirst()!) else {
                    return nil
                }
                bytes.append(high << 4 | low)
            } else {
                bytes.append(byte)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }

    private static func hex(_ byte: UInt8) -> UInt8? {
        switch byte {
        case 48...57: byte - 48
        case 65...70: byte - 55
        case 97...102: byte - 87
        default: nil
        }
    }
}
