/// ITU-T G.711 μ-law and A-law, bit-exact with the ITU-T G.191 reference code
/// (`ulaw_compress`/`ulaw_expand`, `alaw_compress`/`alaw_expand`).
///
/// Decoding is a 256-entry table. Encoding is computed (a few shifts and one count of
/// leading zeros), which is as fast as a 64 K table without the cache footprint. Negative
/// samples use the one's complement before quantising, as G.191 does, so -1…-4 encode to
/// μ-law `0x7F` (negative zero) rather than to -8.
package enum G711 {
    /// μ-law code → linear sample. `0xFF` and `0x7F` are both 0; extremes are ±32124.
    package static let muLawTable: [Int16] = (0..<256).map { muLawExpand(UInt8($0)) }
    /// A-law code → linear sample. Never 0 (the smallest steps are ±8); extremes are ±32256.
    package static let aLawTable: [Int16] = (0..<256).map { aLawExpand(UInt8($0)) }

    /// Encodes one sample as μ-law.
    @inlinable
    package static func muLaw(_ sample: Int16) -> UInt8 {
        let value = Int32(sample)
        // Magnitude on 13 bits, biased by 33 so that each segment starts at a power of two.
        let magnitude = min(((value < 0 ? ~value : value) >> 2) + 33, 0x1FFF)
        // Segment 1…8: one more than the bit length of magnitude >> 6.
        let segment = Int32(1 + (Int32.bitWidth - (magnitude >> 6).leadingZeroBitCount))
        let mantissa = 0x0F - ((magnitude >> segment) & 0x0F)
        let code = (8 - segment) << 4 | mantissa
        return UInt8(truncatingIfNeeded: value >= 0 ? code | 0x80 : code)
    }

    /// Encodes one sample as A-law.
    @inlinable
    package static func aLaw(_ sample: Int16) -> UInt8 {
        let value = Int32(sample)
        var index = (value < 0 ? ~value : value) >> 4   // 0…2047
        if index > 15 {
            // Exponent 1…7 from the bit length; the mantissa is the 4 bits under the leading one.
            let exponent = Int32(Int32.bitWidth - index.leadingZeroBitCount) - 4
            index = exponent << 4 | ((index >> (exponent - 1)) & 0x0F)
        }
        if value >= 0 { index |= 0x80 }
        return UInt8(truncatingIfNeeded: index ^ 0x55)
    }

    /// Decodes one μ-law code.
    @inlinable
    package static func muLawDecode(_ code: UInt8) -> Int16 {
        muLawTable.withUnsafeBufferPointer { $0[Int(code)] }
    }

    /// Decodes one A-law code.
    @inlinable
    package static func aLawDecode(_ code: UInt8) -> Int16 {
        aLawTable.withUnsafeBufferPointer { $0[Int(code)] }
    }

    /// Decodes μ-law bytes into `output`; returns `min(payload.count, output.count)`.
    @discardableResult
    package static func decodeMuLaw(_ payload: UnsafeRawBufferPointer, into output: UnsafeMutableBufferPointer<Int16>) -> Int {
        decode(payload, table: muLawTable, into: output)
    }

    /// Decodes A-law bytes into `output`; returns `min(payload.count, output.count)`.
    @discardableResult
    package static func decodeALaw(_ payload: UnsafeRawBufferPointer, into output: UnsafeMutableBufferPointer<Int16>) -> Int {
        decode(payload, table: aLawTable, into: output)
    }

    /// Appends μ-law bytes decoded as s16le (two bytes per input byte).
    package static func appendMuLawAsLittleEndian(_ payload: UnsafeRawBufferPointer, to output: inout [UInt8]) {
        appendLittleEndian(payload, table: muLawTable, to: &output)
    }

    /// Appends A-law bytes decoded as s16le (two bytes per input byte).
    package static func appendALawAsLittleEndian(_ payload: UnsafeRawBufferPointer, to output: inout [UInt8]) {
        appendLittleEndian(payload, table: aLawTable, to: &output)
    }

    private static func decode(
        _ payload: UnsafeRawBufferPointer, table: [Int16], into output: UnsafeMutableBufferPointer<Int16>
    ) -> Int {
        let count = min(payload.count, output.count)
        table.withUnsafeBufferPointer { table in
            for index in 0..<count {
                output[index] = table[Int(payload[index])]
            }
        }
        return count
    }

    private static func appendLittleEndian(_ payload: UnsafeRawBufferPointer, table: [Int16], to output: inout [UInt8]) {
        // No reserveCapacity: it grows to the exact size asked, so a caller appending frame
        // after frame to one buffer would reallocate every time; append's growth is geometric.
        table.withUnsafeBufferPointer { table in
            for byte in payload {
                let bits = UInt16(bitPattern: table[Int(byte)])
                output.append(UInt8(truncatingIfNeeded: bits))
                output.append(UInt8(truncatingIfNeeded: bits >> 8))
            }
        }
    }

    /// G.191 `ulaw_expand`.
    static func muLawExpand(_ code: UInt8) -> Int16 {
        let inverted = Int32(~code)
        let exponent = (inverted >> 4) & 0x07
        let mantissa = inverted & 0x0F
        let step = Int32(4) << (exponent + 1)
        let magnitude = (Int32(0x80) << exponent) + step * mantissa + step / 2 - 4 * 33
        return Int16(code < 0x80 ? -magnitude : magnitude)
    }

    /// G.191 `alaw_expand`.
    static func aLawExpand(_ code: UInt8) -> Int16 {
        let value = Int32(code ^ 0x55) & 0x7F
        let exponent = value >> 4
        var mantissa = value & 0x0F
        if exponent > 0 { mantissa += 16 }
        mantissa = (mantissa << 4) + 8
        if exponent > 1 { mantissa <<= exponent - 1 }
        return Int16(code > 127 ? mantissa : -mantissa)
    }
}
