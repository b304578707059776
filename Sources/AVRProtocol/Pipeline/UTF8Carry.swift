/// Decodes a UTF-8 byte stream that arrives in pieces cut anywhere: a sequence split across
/// two pieces is held back (at most 3 bytes) and completed by the next one, so a character
/// is never replaced by U+FFFD just because TCP cut it. Bytes that are really invalid still
/// become U+FFFD, exactly as `String(decoding:as:)` would decode the whole stream: a piece is
/// only ever cut before a byte that is not a continuation byte, where the standard decoder
/// starts afresh anyway.
struct UTF8Carry: Sendable {
    private var held: [UInt8] = []

    init() {}

    /// Whether a partial sequence is waiting for its next bytes.
    var isHolding: Bool { !held.isEmpty }

    /// The text of `bytes` (after what was held), up to the last complete character.
    mutating func decode(_ bytes: UnsafeRawBufferPointer) -> String {
        if held.isEmpty {
            let keep = Self.incompleteTailLength(bytes)
            let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[..<(bytes.count - keep)]), as: UTF8.self)
            held.append(contentsOf: bytes[(bytes.count - keep)...])
            return text
        }
        held.append(contentsOf: bytes)
        let keep = held.withUnsafeBytes { Self.incompleteTailLength($0) }
        let text = String(decoding: held[..<(held.count - keep)], as: UTF8.self)
        held.removeFirst(held.count - keep)
        return text
    }

    /// The end of the stream: whatever is held decodes as it is (an incomplete sequence at
    /// the very end is invalid, U+FFFD).
    mutating func finish() -> String {
        defer { held.removeAll() }
        return String(decoding: held, as: UTF8.self)
    }

    /// How many bytes at the end of `bytes` start a multi-byte sequence that the bytes do not
    /// complete (0 when the end is a complete character or an invalid byte).
    static func incompleteTailLength(_ bytes: UnsafeRawBufferPointer) -> Int {
        let count = bytes.count
        var back = 1
        while back <= min(4, count) {
            let byte = bytes[count - back]
            if byte & 0xC0 != 0x80 {
                let length: Int
                switch byte {
                case 0xC2...0xDF: length = 2
                case 0xE0...0xEF: length = 3
                case 0xF0...0xF4: length = 4
                default: length = 1
                }
                return back < length ? back : 0
            }
            back += 1
        }
        return 0
    }
}
