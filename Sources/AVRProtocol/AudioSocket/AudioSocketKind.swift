/// The first byte of every AudioSocket message: what the payload is.
///
/// Any other byte value is not AudioSocket, and ``AudioSocketDecoder`` rejects it as soon as it
/// sees it, without waiting for a length: a peer that speaks HTTP or TLS to the AudioSocket port
/// (`G` = 0x47, `P` = 0x50) fails on its first byte instead of stalling the connection.
package enum AudioSocketKind: UInt8, Sendable, Hashable, CaseIterable {
    /// No payload: the call is over (both directions).
    case hangup = 0x00
    /// 16 raw bytes: the call UUID, always the first message from Asterisk.
    case uuid = 0x01
    /// One ASCII byte: a DTMF digit.
    case dtmf = 0x03
    /// Audio at 8 kHz: signed linear 16-bit LE from `AudioSocket()`, or the channel's
    /// native G.711 bytes from `Dial(AudioSocket/...)` (see ``CodecDetector``).
    case audio8kHz = 0x10
    /// Signed linear 16-bit LE at 12 kHz.
    case audio12kHz = 0x11
    /// Signed linear 16-bit LE at 16 kHz.
    case audio16kHz = 0x12
    /// Signed linear 16-bit LE at 24 kHz.
    case audio24kHz = 0x13
    /// Signed linear 16-bit LE at 32 kHz.
    case audio32kHz = 0x14
    /// Signed linear 16-bit LE at 44.1 kHz.
    case audio44_1kHz = 0x15
    /// Signed linear 16-bit LE at 48 kHz.
    case audio48kHz = 0x16
    /// Signed linear 16-bit LE at 96 kHz.
    case audio96kHz = 0x17
    /// Signed linear 16-bit LE at 192 kHz.
    case audio192kHz = 0x18
    /// An error on the Asterisk side, with an optional application-specific code.
    case error = 0xFF

    /// The sample rate in Hz of an audio kind; `nil` for control kinds.
    @inlinable
    package var sampleRate: Int? {
        switch self {
        case .audio8kHz: 8000
        case .audio12kHz: 12000
        case .audio16kHz: 16000
        case .audio24kHz: 24000
        case .audio32kHz: 32000
        case .audio44_1kHz: 44100
        case .audio48kHz: 48000
        case .audio96kHz: 96000
        case .audio192kHz: 192000
        case .hangup, .uuid, .dtmf, .error: nil
        }
    }

    /// Whether the payload is audio (0x10…0x18).
    @inlinable
    package var isAudio: Bool { rawValue >= 0x10 && rawValue <= 0x18 }

    /// The audio kind for a sample rate, or `nil` when AudioSocket has none for it.
    package init?(audioSampleRate rate: Int) {
        switch rate {
        case 8000: self = .audio8kHz
        case 12000: self = .audio12kHz
        case 16000: self = .audio16kHz
        case 24000: self = .audio24kHz
        case 32000: self = .audio32kHz
        case 44100: self = .audio44_1kHz
        case 48000: self = .audio48kHz
        case 96000: self = .audio96kHz
        case 192000: self = .audio192kHz
        default: return nil
        }
    }
}
