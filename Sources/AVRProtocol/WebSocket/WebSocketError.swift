/// Why the peer's WebSocket stream cannot be accepted. Each case maps to the close code the
/// client sends before failing the connection (RFC 6455 §7.4.1).
package enum WebSocketError: Error, Equatable, Sendable {
    /// A server must not mask its frames (RFC 6455 §5.1).
    case maskedFrameFromServer
    /// A client must mask every frame it sends (RFC 6455 §5.1).
    case unmaskedFrameFromClient
    /// RSV1–3 set although no extension was negotiated.
    case reservedBitsSet
    case unknownOpcode(UInt8)
    /// A close, ping or pong without FIN.
    case fragmentedControlFrame
    /// A control frame with more than 125 bytes of payload.
    case controlFrameTooLarge
    /// A 64-bit length with its most significant bit set.
    case invalidPayloadLength
    /// A frame or reassembled message larger than the configured maximum.
    case messageTooLarge
    /// A continuation frame with no message being assembled.
    case unexpectedContinuation
    /// A new text or binary frame while a fragmented message is still incomplete.
    case expectedContinuation
    /// A text message or close reason that is not valid UTF-8.
    case invalidUTF8
    /// A close frame whose payload is a single byte.
    case invalidClosePayload
    /// A close code the peer may not send (RFC 6455 §7.4).
    case invalidCloseCode(UInt16)

    /// The close code to send when failing the connection for this error.
    package var closeCode: WebSocketCloseCode {
        switch self {
        case .messageTooLarge: return .messageTooBig
        case .invalidUTF8: return .invalidFramePayloadData
        default: return .protocolError
        }
    }
}

extension WebSocketError: CustomStringConvertible {
    package var description: String {
        switch self {
        case .maskedFrameFromServer: return "masked frame from server"
        case .unmaskedFrameFromClient: return "unmasked frame from client"
        case .reservedBitsSet: return "reserved bits set without a negotiated extension"
        case .unknownOpcode(let value): return "unknown opcode 0x\(String(value, radix: 16))"
        case .fragmentedControlFrame: return "fragmented control frame"
        case .controlFrameTooLarge: return "control frame longer than 125 bytes"
        case .invalidPayloadLength: return "64-bit payload length with the most significant bit set"
        case .messageTooLarge: return "message larger than the configured maximum"
        case .unexpectedContinuation: return "continuation frame without a message in progress"
        case .expectedContinuation: return "new data frame inside a fragmented message"
        case .invalidUTF8: return "text is not valid UTF-8"
        case .invalidClosePayload: return "close frame with a 1-byte payload"
        case .invalidCloseCode(let code): return "invalid close code \(code)"
        }
    }
}
