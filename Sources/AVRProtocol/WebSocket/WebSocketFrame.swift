/// A frame header as RFC 6455 §5.2 lays it out. The reserved bits are not modelled: we never
/// negotiate an extension, so a frame with any of them set is rejected by the decoder and the
/// encoder never sets them.
package struct WebSocketFrame: Sendable, Equatable {
    package var fin: Bool
    package var opcode: WebSocketOpcode
    /// `nil` for unmasked frames (everything a server sends).
    package var maskingKey: WebSocketMaskingKey?
    package var payloadLength: Int

    package init(fin: Bool, opcode: WebSocketOpcode, maskingKey: WebSocketMaskingKey? = nil, payloadLength: Int) {
        self.fin = fin
        self.opcode = opcode
        self.maskingKey = maskingKey
        self.payloadLength = payloadLength
    }

    /// The length of the encoded header: 2 bytes, plus 2 or 8 for extended lengths, plus 4 for
    /// a masking key.
    @inlinable
    package static func headerLength(payloadLength: Int, masked: Bool) -> Int {
        let lengthBytes = payloadLength <= 125 ? 0 : (payloadLength <= 0xFFFF ? 2 : 8)
        return 2 + lengthBytes + (masked ? 4 : 0)
    }
}

/// A decoded frame whose payload still lives in the read buffer: `payloadRange` indexes
/// `ByteBuffer.storage` and stays valid until the buffer is next mutated or the decoder is
/// next called (see `WebSocketFrameDecoder`).
package struct WebSocketFrameHeaderAndPayloadRange: Sendable, Equatable {
    package var header: WebSocketFrame
    package var payloadRange: Range<Int>

    package init(header: WebSocketFrame, payloadRange: Range<Int>) {
        self.header = header
        self.payloadRange = payloadRange
    }
}

/// Which end of the connection we are: it decides which frames must be masked. The STS legs
/// are clients; the media endpoint (`/media`, Asterisk's `chan_websocket` connecting in) is
/// a server.
package enum WebSocketRole: Sendable, Equatable {
    /// We mask what we send and read unmasked frames.
    case client
    /// We send unmasked frames and read masked ones, unmasking them.
    case server
}
