/// Percent-encoding of query keys and values: RFC 3986 unreserved characters
/// (`A-Z a-z 0-9 - . _ ~`) stay as they are, every other UTF-8 byte becomes `%XX` in
/// uppercase hex. Stricter than JavaScript's `encodeURIComponent` (which keeps `!'()*`),
/// so the result is safe in any URL component.
package enum PercentEncoding {
    /// `text` percent-encoded.
    package static func encode(_ text: String) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        appendEncoded(text, to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Appends `text` percent-encoded to `bytes`.
    package static func appendEncoded(_ text: String, to bytes: inout [UInt8]) {
        for byte in text.utf8 {
            if isUnreserved(byte) {
                bytes.append(byte)
            } else {
                bytes.append(UInt8(ascii: "%"))
                bytes.append(uppercaseHexDigits[Int(byte >> 4)])
                bytes.append(uppercaseHexDigits[Int(byte & 0x0F)])
            }
        }
    }

    /// RFC 3986 section 2.3.
    package static func isUnreserved(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"),
            UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
            true
        default:
            false
        }
    }
}

private let uppercaseHexDigits: [UInt8] = Array("0123456789ABCDEF".utf8)
