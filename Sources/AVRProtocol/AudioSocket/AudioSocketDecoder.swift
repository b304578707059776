/// Decodes AudioSocket messages from a connection's read buffer.
///
/// Call ``decode(_:)`` in a loop after every read until it returns `nil` (a partial message:
/// wait for more bytes). A message is `kind` (1 byte), `length` (2 bytes, big-endian), then
/// `length` bytes of payload; TCP may split or coalesce them anywhere.
///
/// Audio payloads are left in the buffer for the caller to read in place (see
/// ``AudioSocketFrame``); the decoder remembers them and consumes them at the start of the
/// next `decode`. So the caller must not move the buffer's reader index itself, and appending
/// more bytes in between is fine (compaction keeps the readable bytes in order).
///
/// Checks happen as early as the bytes allow: an unknown kind fails on the first byte, a bad
/// length on the third, before any payload is waited for. After an error the connection must
/// be closed; the decoder does not skip the bad bytes.
package struct AudioSocketDecoder: Sendable {
    /// The default largest payload: 20 ms at 192 kHz is 7680 bytes, so anything past 8 KiB is
    /// not an honest frame and would only make us buffer for a misbehaving peer.
    package static let defaultMaximumPayloadLength = 8192

    /// The largest payload accepted, for any kind.
    package let maximumPayloadLength: Int

    /// Bytes of the last returned audio payload, still in the buffer.
    private var pendingAudioBytes = 0

    package init(maximumPayloadLength: Int = AudioSocketDecoder.defaultMaximumPayloadLength) {
        precondition(maximumPayloadLength >= 16 && maximumPayloadLength <= 0xFFFF)
        self.maximumPayloadLength = maximumPayloadLength
    }

    /// The next complete message, or `nil` when more bytes are needed.
    package mutating func decode(_ buffer: inout ByteBuffer) throws(AudioSocketError) -> AudioSocketFrame? {
        if pendingAudioBytes > 0 {
            buffer.moveReaderIndex(forwardBy: pendingAudioBytes)
            pendingAudioBytes = 0
        }
        guard let (kind, length) = try Self.header(available: buffer.readableBytes, maximumPayloadLength: maximumPayloadLength,
                                                   byte: { buffer.byte(at: $0) }),
              buffer.readableBytes >= 3 + length else { return nil }
        if kind.isAudio {
            buffer.moveReaderIndex(forwardBy: 3)
            pendingAudioBytes = length
            return .audio(AudioSocketAudio(kind: kind, payloadLength: length))
        }
        let frame = Self.controlFrame(kind: kind, length: length, byte: { buffer.byte(at: $0) },
                                      bytes: { Array(buffer.bytes(at: $0, count: $1)) })
        buffer.moveReaderIndex(forwardBy: 3 + length)
        return frame
    }

    /// The kind and payload length of the message whose first `available` bytes `byte`
    /// reads, or nil while the 3-byte header is incomplete. Checks happen as early as the
    /// bytes allow: the kind on the first byte, the length on the third.
    @inline(__always)
    static func header(available: Int, maximumPayloadLength: Int,
                       byte: (Int) -> UInt8) throws(AudioSocketError) -> (AudioSocketKind, Int)? {
        guard available >= 1 else { return nil }
        let kindByte = byte(0)
        guard let kind = AudioSocketKind(rawValue: kindByte) else {
            throw .unknownKind(kindByte)
        }
        guard available >= 3 else { return nil }
        // Big-endian on the wire, whatever the payload's own byte order (slin is LE).
        let length = Int(byte(1)) << 8 | Int(byte(2))
        try validate(kind: kind, length: length, maximumPayloadLength: maximumPayloadLength)
        return (kind, length)
    }

    /// A complete non-audio message; `byte(i)` / `bytes(i, n)` read from its first byte.
    static func controlFrame(kind: AudioSocketKind, length: Int, byte: (Int) -> UInt8,
                             bytes: (Int, Int) -> [UInt8]) -> AudioSocketFrame {
        switch kind {
        case .uuid:
            var high: UInt64 = 0
            var low: UInt64 = 0
            for offset in 0..<8 {
                high = high << 8 | UInt64(byte(3 + offset))
                low = low << 8 | UInt64(byte(11 + offset))
            }
            return .uuid(CallUUID(high: high, low: low))
        case .dtmf:
            let digit = byte(3)
            return DTMFDigit(ascii: digit).map(AudioSocketFrame.dtmf) ?? .invalidDTMF(digit)
        case .error:
            return .error(code: bytes(3, length))
        default:
            // A hangup's payload is ignored: a hangup is a hangup, and refusing it would end
            // the call all the same, only with a less accurate reason.
            return .hangup
        }
    }

    private static func validate(kind: AudioSocketKind, length: Int, maximumPayloadLength: Int) throws(AudioSocketError) {
        guard length <= maximumPayloadLength else {
            throw .payloadTooLarge(kind: kind, length: length)
        }
        let valid: Bool = switch kind {
        case .hangup, .error: true
        case .uuid: length == 16
        case .dtmf: length == 1
        // 0x10 may carry G.711 (one byte per sample), so any non-zero length is possible.
        case .audio8kHz: length > 0
        // The others are always 16-bit samples: an odd length cannot be honest.
        default: length > 0 && length % 2 == 0
        }
        guard valid else { throw .invalidPayloadLength(kind: kind, length: length) }
    }
}
