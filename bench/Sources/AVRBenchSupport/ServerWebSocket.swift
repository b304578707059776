import AVRProtocol

/// The server side of RFC 6455 framing, which AVRProtocol (a client) does not need: read the
/// masked frames a client sends, unmasking in place, and write unmasked frames.
public enum ServerWebSocket {
    public enum Failure: Error { case unmaskedClientFrame, frameTooLarge }

    /// The `101` answer to a handshake request carrying `key`.
    public static func handshakeResponse(key: String) -> [UInt8] {
        Array(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Accept: \(WebSocketHandshake.acceptValue(forKey: key))\r\n\r\n").utf8)
    }

    /// Decodes the next complete client frame at the front of `queue`, unmasks its payload in
    /// place and calls `body(fin, opcode, payload)`; returns false when no whole frame is queued.
    public static func nextFrame(
        _ queue: inout ByteQueue, maxPayload: Int = 1 << 20,
        _ body: (Bool, UInt8, UnsafeMutableRawBufferPointer) -> Void
    ) throws(Failure) -> Bool {
        let available = queue.count
        guard available >= 2 else { return false }
        let first = queue[0], second = queue[1]
        guard second & 0x80 != 0 else { throw .unmaskedClientFrame }
        var header = 2
        var length = Int(second & 0x7F)
        if length == 126 {
            guard available >= 4 else { return false }
            length = Int(queue[2]) << 8 | Int(queue[3])
            header = 4
        } else if length == 127 {
            guard available >= 10 else { return false }
            var wide: UInt64 = 0
            for index in 2..<10 { wide = wide << 8 | UInt64(queue[index]) }
            guard wide <= UInt64(maxPayload) else { throw .frameTooLarge }
            length = Int(wide)
            header = 10
        }
        guard length <= maxPayload else { throw .frameTooLarge }
        guard available >= header + 4 + length else { return false }
        let key = (queue[header], queue[header + 1], queue[header + 2], queue[header + 3])
        let payloadStart = header + 4
        queue.withReadable { readable in
            let payload = UnsafeMutableRawBufferPointer(rebasing: readable[payloadStart..<(payloadStart + length)])
            for index in 0..<length {
                let mask: UInt8
                switch index & 3 {
                case 0: mask = key.0
                case 1: mask = key.1
                case 2: mask = key.2
                default: mask = key.3
                }
                payload[index] ^= mask
            }
            body(first & 0x80 != 0, first & 0x0F, payload)
        }
        queue.consume(payloadStart + length)
        return true
    }

    /// Appends one unmasked server frame.
    public static func appendFrame(opcode: UInt8, payload: UnsafeRawBufferPointer, to output: inout [UInt8]) {
        output.append(0x80 | opcode)
        if payload.count < 126 {
            output.append(UInt8(payload.count))
        } else if payload.count <= 0xFFFF {
            output.append(126)
            output.append(UInt8(payload.count >> 8))
            output.append(UInt8(truncatingIfNeeded: payload.count))
        } else {
            output.append(127)
            for shift in stride(from: 56, through: 0, by: -8) { output.append(UInt8(truncatingIfNeeded: payload.count >> shift)) }
        }
        output.append(contentsOf: payload)
    }
}
