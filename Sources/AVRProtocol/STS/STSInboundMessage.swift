/// The fast path for text messages from the STS service. Almost every message is
/// `{"type":"audio","audio":"<base64>"}`; recognising that exact shape costs one scan and
/// yields the base64 bytes in place, ready for `Base64.decode` straight into the
/// playback queue. Anything the scanner is not certain about is handed back as
/// `.needsGeneralParse` for the general JSON parser — never guessed.
package enum STSInboundMessage: Sendable, Equatable {
    /// An audio message; the range is the base64 text (without quotes), as offsets into the
    /// payload that was parsed.
    case audio(base64: Range<Int>)
    /// `{"type":"interruption"}`: drop queued playback now.
    case interruption
    /// Any other message, or one of the above in a form the fast path does not take on:
    /// escapes in a string, keys other than `type` and `audio`, duplicate keys, non-string
    /// values, or malformed JSON.
    case needsGeneralParse

    /// Classifies a complete text message. Accepts the keys in any order and JSON whitespace
    /// between tokens.
    package static func parse(_ payload: UnsafeRawBufferPointer) -> STSInboundMessage {
        var scanner = Scanner(bytes: payload)
        return scanner.scanMessage() ?? .needsGeneralParse
    }

    private struct Scanner {
        let bytes: UnsafeRawBufferPointer
        var index = 0

        init(bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

        /// nil = fall back to the general parser.
        mutating func scanMessage() -> STSInboundMessage? {
            skipWhitespace()
            guard consume(UInt8(ascii: "{")) else { return nil }
            var type: Range<Int>?
            var audio: Range<Int>?
            repeat {
                skipWhitespace()
                guard let key = scanString() else { return nil }
                skipWhitespace()
                guard consume(UInt8(ascii: ":")) else { return nil }
                skipWhitespace()
                guard let value = scanString() else { return nil }
                if equals(key, "type") {
                    guard type == nil else { return nil }
                    type = value
                } else if equals(key, "audio") {
                    guard audio == nil else { return nil }
                    audio = value
                } else {
                    return nil
                }
                skipWhitespace()
            } while consume(UInt8(ascii: ","))
            guard consume(UInt8(ascii: "}")) else { return nil }
            skipWhitespace()
            guard index == bytes.count, let type else { return nil }
            if let audio, equals(type, "audio") { return .audio(base64: audio) }
            if audio == nil, equals(type, "interruption") { return .interruption }
            return nil
        }

        mutating func skipWhitespace() {
            while index < bytes.count {
                switch bytes[index] {
                case 0x20, 0x09, 0x0A, 0x0D: index += 1
                default: return
                }
            }
        }

        mutating func consume(_ byte: UInt8) -> Bool {
            guard index < bytes.count, bytes[index] == byte else { return false }
            index += 1
            return true
        }

        /// A string with no escapes and no control characters; returns its contents' range.
        /// Such a string's bytes are its value, so the range can be used as is.
        mutating func scanString() -> Range<Int>? {
            guard consume(UInt8(ascii: "\"")), let base = bytes.baseAddress else { return nil }
            let start = index
            let count = bytes.count
            // Eight bytes per step until a word holds a quote, a backslash or a control byte
            // (SWAR "has byte less than / equal to"; exact as an existence test).
            let ones: UInt64 = 0x0101_0101_0101_0101
            let highs: UInt64 = 0x8080_8080_8080_8080
            while index + 8 <= count {
                let word = UInt64(littleEndian: base.loadUnaligned(fromByteOffset: index, as: UInt64.self))
                let quote = word ^ (ones &* 0x22)
                let backslash = word ^ (ones &* 0x5C)
                let special = ((quote &- ones) & ~quote) | ((backslash &- ones) & ~backslash) | ((word &- ones &* 0x20) & ~word)
                if special & highs != 0 { break }
                index += 8
            }
            while index < count {
                let byte = bytes[index]
                if byte == UInt8(ascii: "\"") {
                    index += 1
                    return start..<(index - 1)
                }
                if byte == UInt8(ascii: "\\") || byte < 0x20 { return nil }
                index += 1
            }
            return nil
        }

        func equals(_ range: Range<Int>, _ literal: StaticString) -> Bool {
            guard range.count == literal.utf8CodeUnitCount else { return false }
            let text = literal.utf8Start
            for offset in 0..<range.count where bytes[range.lowerBound + offset] != text[offset] {
                return false
            }
            return true
        }
    }
}
