/// The client's opening handshake (RFC 6455 §4.1): the request it sends and the accept value
/// it expects back. No subprotocols and no extensions are offered, so none may be accepted.
package enum WebSocketHandshake {
    /// The GUID every server appends to the key before hashing (RFC 6455 §1.3).
    static let acceptGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

    /// The upgrade request. `host` is the Host header value (with `:port` when not the
    /// scheme's default); `requestTarget` is path plus query, starting with `/`.
    package static func makeRequest(host: String, requestTarget: String, key: String) -> [UInt8] {
        precondition(requestTarget.hasPrefix("/"), "request target must be origin-form")
        return HTTPRequestHead.make(method: "GET", target: requestTarget, host: host, headers: [
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", key),
            ("Sec-WebSocket-Version", "13"),
            ("User-Agent", "avr-core"),
        ])
    }

    /// A fresh `Sec-WebSocket-Key`: 16 random bytes, base64 (24 characters).
    package static func makeKey<Generator: RandomNumberGenerator>(using generator: inout Generator) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(16)
        for _ in 0..<2 {
            var word = generator.next() as UInt64
            for _ in 0..<8 {
                bytes.append(UInt8(truncatingIfNeeded: word))
                word >>= 8
            }
        }
        return Base64.encodeToString(bytes)
    }

    /// The `Sec-WebSocket-Accept` value a server must answer `key` with.
    package static func acceptValue(forKey key: String) -> String {
        Base64.encodeToString(SHA1.hash((key + acceptGUID).utf8))
    }
}
