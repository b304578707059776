/// Decodes frames sent by a WebSocket server out of a connection's read buffer, without
/// copying payloads: a decoded frame's payload is a range of `ByteBuffer.storage`.
///
/// Use it in a loop; each call first consumes the frame it returned last time, so the
/// payload of a returned frame stays where it is until the next call:
///
///     while let frame = try decoder.decode(&buffer) {
///         buffer.storage.withUnsafeBytes { use(UnsafeRawBufferPointer(rebasing: $0[frame.payloadRange])) }
///     }
///
/// Do not mutate the buffer between receiving a frame and the next `decode` call, other than
/// through `consumeReturnedFrame(_:)`. A `nil` result means "need more bytes" and consumes
/// nothing new. Lengths are validated as 64-bit values before they become `Int`, so no peer
/// input can trap.
package struct WebSocketFrameDecoder: Sendable {
    /// Larger frames fail the connection with close code 1009.
    package static let defaultMaxFrameSize = 1 << 20

    package let maxFrameSize: Int
    /// Bytes of the frame returned last, still in front of the reader index.
    private var returnedFrameLength = 0

    package init(maxFrameSize: Int = WebSocketFrameDecoder.defaultMaxFrameSize) {
        precondition(maxFrameSize >= 125, "every control frame must fit")
        self.maxFrameSize = maxFrameSize
    }

    /// The next complete frame, or `nil` when the buffer does not hold one yet.
    package mutating func decode(_ buffer: inout ByteBuffer) throws(WebSocketError) -> WebSocketFrameHeaderAndPayloadRange? {
        consumeReturnedFrame(&buffer)
        let available = buffer.readableBytes
        let input = buffer
        guard let (header, headerLength) = try Self.header(available: available, maxFrameSize: maxFrameSize,
                                                           byte: { input.byte(at: $0) }),
              available - headerLength >= header.payloadLength else { return nil }
        let payloadStart = buffer.readerIndex + headerLength
        returnedFrameLength = headerLength + header.payloadLength
        return WebSocketFrameHeaderAndPayloadRange(
            header: header, payloadRange: payloadStart..<(payloadStart + header.payloadLength))
    }

    /// Reads a frame's header from its first `available` bytes (`byte(i)` is byte i): the
    /// header and its length (masking key included), `nil` when more bytes are needed, or the
    /// error, as soon as the bytes show it. Lengths are checked as 64-bit values before they
    /// become `Int`. `role` is ours: a client reads unmasked server frames, a server reads
    /// masked client frames (RFC 6455 §5.1 makes either the other way a protocol error).
    @inline(__always)
    static func header(available: Int, maxFrameSize: Int, role: WebSocketRole = .client,
                       byte: (Int) -> UInt8) throws(WebSocketError) -> (WebSocketFrame, headerLength: Int)? {
        guard available >= 1 else { return nil }
        let first = byte(0)
        guard first & 0x70 == 0 else { throw .reservedBitsSet }
        guard let opcode = WebSocketOpcode(rawValue: first & 0x0F) else { throw .unknownOpcode(first & 0x0F) }
        let fin = first & 0x80 != 0
        if opcode.isControl && !fin { throw .fragmentedControlFrame }

        guard available >= 2 else { return nil }
        let second = byte(1)
        let masked = second & 0x80 != 0
        switch role {
        case .client: guard !masked else { throw .maskedFrameFromServer }
        case .server: guard masked else { throw .unmaskedFrameFromClient }
        }

        var headerLength: Int
        let payloadLength: Int
        switch second & 0x7F {
        case 126:
            headerLength = 4
            guard available >= headerLength else { return nil }
            payloadLength = Int(byte(2)) << 8 | Int(byte(3))
        case 127:
            headerLength = 10
            guard available >= headerLength else { return nil }
            var length: UInt64 = 0
            for offset in 2..<10 { length = length << 8 | UInt64(byte(offset)) }
            guard length >> 63 == 0 else { throw .invalidPayloadLength }
            // Checked on the 64-bit value, before any conversion.
            guard length <= UInt64(maxFrameSize) else {
                throw opcode.isControl ? .controlFrameTooLarge : .messageTooLarge
            }
            payloadLength = Int(length)
        case let short:
            headerLength = 2
            payloadLength = Int(short)
        }
        if opcode.isControl && payloadLength > 125 { throw .controlFrameTooLarge }
        guard payloadLength <= maxFrameSize else { throw .messageTooLarge }
        var key: WebSocketMaskingKey?
        if masked {
            guard available >= headerLength + 4 else { return nil }
            key = WebSocketMaskingKey(byte(headerLength), byte(headerLength + 1), byte(headerLength + 2), byte(headerLength + 3))
            headerLength += 4
        }
        return (WebSocketFrame(fin: fin, opcode: opcode, maskingKey: key, payloadLength: payloadLength), headerLength)
    }

    /// Moves the reader index past the frame returned last, if not done yet. `decode` does
    /// this itself; call it directly only when leaving the loop early with a frame in hand.
    package mutating func consumeReturnedFrame(_ buffer: inout ByteBuffer) {
        if returnedFrameLength > 0 {
            buffer.moveReaderIndex(forwardBy: returnedFrameLength)
            returnedFrameLength = 0
        }
    }
}
