/// A call's UUID: the key that ties the `POST /call` metadata, the AudioSocket connection
/// (which sends the 16 raw bytes) and the STS session together. Stored as two integers so
/// that it hashes and compares without allocating; rendered lowercase 8-4-4-4-12, which is
/// how Asterisk and the webhooks spell it.
package struct CallUUID: Hashable, Sendable, CustomStringConvertible {
    /// The first 8 bytes, big-endian.
    package let high: UInt64
    /// The last 8 bytes, big-endian.
    package let low: UInt64

    package init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// A fresh random (version 4) UUID, for a call whose leg names none.
    package static func random() -> CallUUID {
        var generator = SystemRandomNumberGenerator()
        let high = (generator.next() as UInt64) & ~0xF000 | 0x4000
        let low = (generator.next() as UInt64) & ~(UInt64(0xC) << 60) | UInt64(0x8) << 60
        return CallUUID(high: high, low: low)
    }

    /// From the 16 raw bytes of an AudioSocket UUID message; nil when there are not exactly
    /// 16 (a peer's length is never trusted).
    package init?(bytes: some Collection<UInt8>) {
        guard bytes.count == 16 else { return nil }
        var high: UInt64 = 0
        var low: UInt64 = 0
        for (position, byte) in bytes.enumerated() {
            if position < 8 { high = high << 8 | UInt64(byte) } else { low = low << 8 | UInt64(byte) }
        }
        self.init(high: high, low: low)
    }

    /// From the textual form `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` (36 characters, hex
    /// digits in any case, no braces or `urn:uuid:` prefix); nil for anything else.
    package init?(string: some StringProtocol) {
        let utf8 = string.utf8
        guard utf8.count == 36 else { return nil }
        var high: UInt64 = 0
        var low: UInt64 = 0
        var nibbles = 0
        for (position, byte) in utf8.enumerated() {
            if position == 8 || position == 13 || position == 18 || position == 23 {
                guard byte == UInt8(ascii: "-") else { return nil }
                continue
            }
            guard let value = hexValue(byte) else { return nil }
            if nibbles < 16 { high = high << 4 | UInt64(value) } else { low = low << 4 | UInt64(value) }
            nibbles += 1
        }
        self.init(high: high, low: low)
    }

    /// The 16 bytes, in wire order.
    package var bytes: [UInt8] {
        var result: [UInt8] = []
        result.reserveCapacity(16)
        for shift in stride(from: 56, through: 0, by: -8) { result.append(UInt8(truncatingIfNeeded: high >> shift)) }
        for shift in stride(from: 56, through: 0, by: -8) { result.append(UInt8(truncatingIfNeeded: low >> shift)) }
        return result
    }

    /// Lowercase 8-4-4-4-12.
    package var description: String {
        var text: [UInt8] = []
        text.reserveCapacity(36)
        appendDescription(to: &text)
        return String(decoding: text, as: UTF8.self)
    }

    /// Appends the lowercase 8-4-4-4-12 form, for encoders that build a message in place.
    package func appendDescription(to bytes: inout [UInt8]) {
        for nibble in 0..<32 {
            if nibble == 8 || nibble == 12 || nibble == 16 || nibble == 20 { bytes.append(UInt8(ascii: "-")) }
            let word = nibble < 16 ? high : low
            let shift = UInt64(60 - 4 * (nibble % 16))
            bytes.append(lowercaseHexDigits[Int((word >> shift) & 0xF)])
        }
    }
}

private let lowercaseHexDigits: [UInt8] = Array("0123456789abcdef".utf8)

private func hexValue(_ byte: UInt8) -> UInt8? {
    switch byte {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
    default: nil
    }
}
