/// A DTMF key as Asterisk reports it in an AudioSocket `0x03` message: one of `0`–`9`, `*`,
/// `#`, `A`–`D`. Constructing one validates the byte, so holders never see anything else.
package struct DTMFDigit: Hashable, Sendable, CustomStringConvertible {
    /// The ASCII byte as sent on the wire.
    package let ascii: UInt8

    /// `nil` unless `ascii` is one of the sixteen DTMF keys (upper-case letters only, as
    /// Asterisk sends them).
    package init?(ascii: UInt8) {
        switch ascii {
        case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "*"), UInt8(ascii: "#"),
             UInt8(ascii: "A")...UInt8(ascii: "D"):
            self.ascii = ascii
        default:
            return nil
        }
    }

    /// The key as a character, e.g. for `{"digit":"5"}`.
    package var character: Character { Character(Unicode.Scalar(ascii)) }

    package var description: String { String(character) }
}
