/// The opcodes RFC 6455 §5.2 defines. Any other value is a protocol error for us, since no
/// extension is ever negotiated.
package enum WebSocketOpcode: UInt8, Sendable, Equatable {
    case continuation = 0x0
    case text = 0x1
    case binary = 0x2
    case connectionClose = 0x8
    case ping = 0x9
    case pong = 0xA

    /// Control frames (close, ping, pong) may interleave with a fragmented message, must not
    /// themselves be fragmented, and carry at most 125 bytes (RFC 6455 §5.5).
    @inlinable
    package var isControl: Bool { rawValue & 0x8 != 0 }
}
