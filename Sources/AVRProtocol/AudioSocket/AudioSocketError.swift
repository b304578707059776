/// Why bytes from the peer are not valid AudioSocket. Every case ends the connection: the
/// byte stream has no resynchronisation point, so nothing after a bad header can be trusted.
package enum AudioSocketError: Error, Equatable, Sendable {
    /// The kind byte is not one AudioSocket defines (HTTP, TLS, random bytes…).
    case unknownKind(UInt8)
    /// A payload length the kind does not allow: a UUID that is not 16 bytes, a DTMF message
    /// that is not 1 byte, an empty audio payload, or an odd-length signed-linear payload
    /// at 12 kHz and above.
    case invalidPayloadLength(kind: AudioSocketKind, length: Int)
    /// A payload longer than the decoder's limit.
    case payloadTooLarge(kind: AudioSocketKind, length: Int)
}

extension AudioSocketError: CustomStringConvertible {
    package var description: String {
        switch self {
        case .unknownKind(let byte):
            "unknown message kind 0x\(String(byte, radix: 16, uppercase: true)) (not AudioSocket?)"
        case .invalidPayloadLength(let kind, let length):
            "\(length)-byte payload is invalid for kind 0x\(String(kind.rawValue, radix: 16, uppercase: true))"
        case .payloadTooLarge(let kind, let length):
            "\(length)-byte payload exceeds the limit for kind 0x\(String(kind.rawValue, radix: 16, uppercase: true))"
        }
    }
}
