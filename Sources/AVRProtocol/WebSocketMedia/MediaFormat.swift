/// The channel's native format as Asterisk's WebSocket channel (`chan_websocket`) names it in
/// `MEDIA_START` (`format:ulaw`): the bytes of every binary frame in both directions. Set by
/// the dial string's `c(<codec>)` option (or the caller's first format).
package enum MediaFormat: Equatable, Sendable, CustomStringConvertible {
    case ulaw
    case alaw
    /// Signed linear 16-bit, host order (little-endian on every platform we run on), at this
    /// rate: `slin` is 8 kHz, `slin16` 16 kHz and so on.
    case slin(rate: Int)

    /// The format named by Asterisk, or nil for one we cannot take (G.722, Opus, ...: their
    /// frames cannot be cut on byte boundaries and we do not decode them).
    package init?(asteriskName name: some StringProtocol) {
        switch name {
        case "ulaw": self = .ulaw
        case "alaw": self = .alaw
        case "slin": self = .slin(rate: 8000)
        case "slin12": self = .slin(rate: 12000)
        case "slin16": self = .slin(rate: 16000)
        case "slin24": self = .slin(rate: 24000)
        case "slin32": self = .slin(rate: 32000)
        case "slin44": self = .slin(rate: 44100)
        case "slin48": self = .slin(rate: 48000)
        case "slin96": self = .slin(rate: 96000)
        case "slin192": self = .slin(rate: 192000)
        default: return nil
        }
    }

    package var sampleRate: Int {
        switch self {
        case .ulaw, .alaw: 8000
        case .slin(let rate): rate
        }
    }

    /// Bytes of one 20 ms frame.
    package var bytesPer20ms: Int {
        switch self {
        case .ulaw, .alaw: 160
        case .slin(let rate): rate / 50 * 2
        }
    }

    /// The name on the quality line and in logs.
    package var description: String {
        switch self {
        case .ulaw: "ULAW"
        case .alaw: "ALAW"
        case .slin(let rate): rate == 8000 ? "SLIN" : "SLIN\(rate / 1000)"
        }
    }
}
