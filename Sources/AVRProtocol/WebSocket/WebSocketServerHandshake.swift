/// The server's half of the opening handshake (RFC 6455 §4.2): checks an upgrade request and
/// writes the `101 Switching Protocols` answer. No extension is ever accepted; a requested
/// subprotocol is echoed (the first one offered), since a client that asks for one (Asterisk's
/// `protocols =` in websocket_client.conf) fails the handshake when it is not answered.
package enum WebSocketServerHandshake {
    /// Why an upgrade request is refused, with the HTTP status to refuse it with.
    package enum Refusal: Error, Equatable, Sendable, CustomStringConvertible {
        case notGet(String)
        case notAnUpgrade
        case unsupportedVersion(String?)
        case badKey

        package var status: Int {
            switch self {
            case .notGet: 405
            case .notAnUpgrade, .unsupportedVersion: 426
            case .badKey: 400
            }
        }

        package var description: String {
            switch self {
            case .notGet(let method): "a WebSocket upgrade must be a GET, not \(method)"
            case .notAnUpgrade: "this endpoint only speaks WebSocket (Upgrade: websocket, Connection: Upgrade)"
            case .unsupportedVersion(let version): "Sec-WebSocket-Version \(version ?? "missing"); only 13 is supported"
            case .badKey: "Sec-WebSocket-Key must be 16 bytes in base64"
            }
        }
    }

    /// What a valid request asks for: its key and the subprotocol to echo, if any.
    package struct Accepted: Equatable, Sendable {
        package var key: String
        package var subprotocol: String?
    }

    /// Checks the request head; `header(name)` answers a header's value (name lower-case).
    package static func check(method: String, header: (String) -> String?) -> Result<Accepted, Refusal> {
        guard method == "GET" else { return .failure(.notGet(method)) }
        guard let upgrade = header("upgrade"), tokens(upgrade).contains("websocket"),
              let connection = header("connection"), tokens(connection).contains("upgrade") else {
            return .failure(.notAnUpgrade)
        }
        let version = header("sec-websocket-version")
        guard version?.trimmed == "13" else { return .failure(.unsupportedVersion(version)) }
        guard let key = header("sec-websocket-key")?.trimmed,
              let decoded = try? Base64.decode(key), decoded.count == 16 else { return .failure(.badKey) }
        let offered = header("sec-websocket-protocol").map { $0.split(separator: ",").map { $0.trimmed } }
        return .success(Accepted(key: key, subprotocol: offered?.first { !$0.isEmpty }))
    }

    /// The `101` response for an accepted request.
    package static func response(for accepted: Accepted) -> [UInt8] {
        var text = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Accept: \(WebSocketHandshake.acceptValue(forKey: accepted.key))\r\n"
        if let subprotocol = accepted.subprotocol { text += "Sec-WebSocket-Protocol: \(subprotocol)\r\n" }
        text += "\r\n"
        return Array(text.utf8)
    }

    private static func tokens(_ value: String) -> [String] {
        value.split(separator: ",").map { $0.trimmed.lowercased() }
    }
}

extension StringProtocol {
    fileprivate var trimmed: String {
        String(drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed())
    }
}
