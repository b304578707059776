/// Makes text from a peer safe for a text log line: a transcript, an error message or a
/// close reason can carry CR, LF or ESC, and written raw they would end the line and forge
/// the next one (`\n[ERROR]: [uuid] ...`) or drive the terminal that shows the log.
///
/// Escaped, in Swift's notation: LF as `\n`, CR as `\r`, TAB as `\t`, every other C0 control
/// (U+0000–U+001F), DEL (U+007F), the C1 controls (U+0080–U+009F) and the Unicode line and
/// paragraph separators (U+2028, U+2029) as `\u{XX}` in lowercase hex (ESC is `\u{1b}`, NUL
/// `\u{0}`). Everything else, backslashes included, stays as it was: a line is never split,
/// and ordinary text reads as before.
package enum LogTextEscaper {
    /// Appends `text` to `bytes`, escaped. Text with nothing to escape is copied in one go.
    package static func append(_ text: String, to bytes: inout [UInt8]) {
        var text = text
        text.withUTF8 { utf8 in
            guard needsEscaping(utf8) else { return bytes.append(contentsOf: utf8) }
            var index = 0
            while index < utf8.count {
                let byte = utf8[index]
                if byte < 0x20 || byte == 0x7F {
                    appendEscape(UInt32(byte), to: &bytes)
                    index += 1
                } else if byte == 0xC2, index + 1 < utf8.count, (0x80...0x9F).contains(utf8[index + 1]) {
                    appendEscape(UInt32(utf8[index + 1]), to: &bytes)
                    index += 2
                } else if byte == 0xE2, index + 2 < utf8.count, utf8[index + 1] == 0x80,
                          utf8[index + 2] == 0xA8 || utf8[index + 2] == 0xA9 {
                    appendEscape(0x2000 + UInt32(utf8[index + 2]) - 0xA8 + 0x28, to: &bytes)
                    index += 3
                } else {
                    bytes.append(byte)
                    index += 1
                }
            }
        }
    }

    /// `text`, escaped.
    package static func escape(_ text: String) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        append(text, to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Whether any byte starts something to escape (the lead bytes of C1 controls and of the
    /// separators included, so a false positive only costs the slow path).
    private static func needsEscaping(_ utf8: UnsafeBufferPointer<UInt8>) -> Bool {
        for byte in utf8 where byte < 0x20 || byte == 0x7F || byte == 0xC2 || byte == 0xE2 { return true }
        return false
    }

    private static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    private static func appendEscape(_ scalar: UInt32, to bytes: inout [UInt8]) {
        switch scalar {
        case 0x0A: bytes.append(contentsOf: #"\n"#.utf8)
        case 0x0D: bytes.append(contentsOf: #"\r"#.utf8)
        case 0x09: bytes.append(contentsOf: #"\t"#.utf8)
        default:
            bytes.append(contentsOf: #"\u{"#.utf8)
            var shift = 28
            while shift > 0 && (scalar >> UInt32(shift)) & 0xF == 0 { shift -= 4 }
            while shift >= 0 {
                bytes.append(hexDigits[Int((scalar >> UInt32(shift)) & 0xF)])
                shift -= 4
            }
            bytes.append(UInt8(ascii: "}"))
        }
    }
}
