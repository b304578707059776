/// Why base64 failed to decode. Offsets count from the start of the encoded input.
package enum Base64Error: Error, Equatable, Sendable {
    /// The encoded length is not a multiple of 4 (padding is required).
    case invalidLength(Int)
    /// A byte outside the standard alphabet, or `=` where padding may not be.
    case invalidCharacter(offset: Int)
    /// Padding is present but the bits it hides are not zero (non-canonical encoding).
    case invalidPadding(offset: Int)
}

/// Base64 with the standard alphabet and padding (RFC 4648 §4), written for the STS audio
/// path: every call writes into memory the caller owns, works four characters at a time
/// through lookup tables, and never builds an intermediate array.
///
/// Decoding is strict: the length must be a multiple of 4, `=` may only end the input, the
/// bits hidden under padding must be zero, and whitespace is not skipped. A peer that sends
/// anything else gets an error rather than a guess.
package enum Base64 {
    @usableFromInline
    static let encodeTable: [UInt8] = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    /// 256 entries: the 6-bit value of each alphabet byte, 0xFF for everything else
    /// (including `=`, which only the last quad handles).
    @usableFromInline
    static let decodeTable: [UInt8] = {
        var table = [UInt8](repeating: 0xFF, count: 256)
        for (index, byte) in encodeTable.enumerated() { table[Int(byte)] = UInt8(index) }
        return table
    }()

    static let pad = UInt8(ascii: "=")

    // MARK: Encoding

    /// The number of characters `byteCount` bytes encode to, padding included.
    @inlinable
    package static func encodedLength(of byteCount: Int) -> Int {
        ((byteCount + 2) / 3) * 4
    }

    /// Encodes `input` into the start of `output`, which must hold at least
    /// `encodedLength(of: input.count)` bytes; returns the number of bytes written.
    @discardableResult
    package static func encode(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) -> Int {
        encode(input, into: output, xorMask: 0)
    }

    /// Appends the encoding of `input` to `output` (one growth of the array, no other buffer).
    package static func encode(_ input: UnsafeRawBufferPointer, appendingTo output: inout [UInt8]) {
        let start = output.count
        let length = encodedLength(of: input.count)
        output.append(contentsOf: repeatElement(0, count: length))
        output.withUnsafeMutableBytes { raw in
            _ = encode(input, into: UnsafeMutableRawBufferPointer(rebasing: raw[start..<(start + length)]), xorMask: 0)
        }
    }

    /// Convenience for small, cold data (handshake keys, tests).
    package static func encodeToString<Bytes: Sequence<UInt8>>(_ bytes: Bytes) -> String {
        var output: [UInt8] = []
        Array(bytes).withUnsafeBytes { encode($0, appendingTo: &output) }
        return String(decoding: output, as: UTF8.self)
    }

    /// The encoder shared with the WebSocket path: each output quad is XORed with `xorMask`
    /// (four bytes, first character in the low byte) before it is stored. Masking a client
    /// frame while encoding needs this, because a quad's position in the frame modulo 4 is
    /// the same for every quad of one payload.
    @usableFromInline
    static func encode(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer, xorMask: UInt32) -> Int {
        let length = encodedLength(of: input.count)
        precondition(output.count >= length, "base64 output buffer too small")
        guard length > 0, let out = output.baseAddress, let bytes = input.baseAddress else { return 0 }
        let count = input.count
        encodeTable.withUnsafeBufferPointer { table in
            @inline(__always)
            func quad(_ c0: UInt8, _ c1: UInt8, _ c2: UInt8, _ c3: UInt8) -> UInt32 {
                (UInt32(c0) | UInt32(c1) << 8 | UInt32(c2) << 16 | UInt32(c3) << 24) ^ xorMask
            }
            var inIndex = 0
            var outIndex = 0
            let fullEnd = count - count % 3
            while inIndex < fullEnd {
                let group = UInt32(bytes.load(fromByteOffset: inIndex, as: UInt8.self)) << 16
                    | UInt32(bytes.load(fromByteOffset: inIndex + 1, as: UInt8.self)) << 8
                    | UInt32(bytes.load(fromByteOffset: inIndex + 2, as: UInt8.self))
                let value = quad(
                    table[Int(group >> 18)], table[Int((group >> 12) & 0x3F)],
                    table[Int((group >> 6) & 0x3F)], table[Int(group & 0x3F)])
                out.storeBytes(of: value.littleEndian, toByteOffset: outIndex, as: UInt32.self)
                inIndex += 3
                outIndex += 4
            }
            switch count - fullEnd {
            case 1:
                let b0 = Int(bytes.load(fromByteOffset: inIndex, as: UInt8.self))
                let value = quad(table[b0 >> 2], table[(b0 & 0x03) << 4], pad, pad)
                out.storeBytes(of: value.littleEndian, toByteOffset: outIndex, as: UInt32.self)
            case 2:
                let b0 = Int(bytes.load(fromByteOffset: inIndex, as: UInt8.self))
                let b1 = Int(bytes.load(fromByteOffset: inIndex + 1, as: UInt8.self))
                let value = quad(
                    table[b0 >> 2], table[(b0 & 0x03) << 4 | b1 >> 4], table[(b1 & 0x0F) << 2], pad)
                out.storeBytes(of: value.littleEndian, toByteOffset: outIndex, as: UInt32.self)
            default:
                break
            }
        }
        return length
    }

    // MARK: Decoding

    /// The exact number of bytes `input` decodes to, from its length and trailing padding.
    /// Throws when the length is not a multiple of 4. The characters themselves are checked
    /// while decoding.
    package static func decodedLength(of input: UnsafeRawBufferPointer) throws(Base64Error) -> Int {
        let count = input.count
        guard count % 4 == 0 else { throw .invalidLength(count) }
        guard count > 0 else { return 0 }
        var length = count / 4 * 3
        if input[count - 1] == pad { length -= 1 }
        if input[count - 2] == pad { length -= 1 }
        return length
    }

    /// Decodes `input` into the start of `output`, which must hold at least
    /// `decodedLength(of: input)` bytes; returns the number of bytes written.
    @discardableResult
    package static func decode(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) throws(Base64Error) -> Int {
        let length = try decodedLength(of: input)
        precondition(output.count >= length, "base64 output buffer too small")
        var written = 0
        try forEachGroup(input) { group, byteCount in
            output[written] = UInt8(truncatingIfNeeded: group >> 16)
            if byteCount > 1 { output[written + 1] = UInt8(truncatingIfNeeded: group >> 8) }
            if byteCount > 2 { output[written + 2] = UInt8(truncatingIfNeeded: group) }
            written += byteCount
        }
        return written
    }

    /// Appends the decoding of `input` to `output`. On error `output` keeps its old contents.
    package static func decode(_ input: UnsafeRawBufferPointer, appendingTo output: inout [UInt8]) throws(Base64Error) {
        let start = output.count
        let length = try decodedLength(of: input)
        output.append(contentsOf: repeatElement(0, count: length))
        // `withUnsafeMutableBytes` rethrows untyped errors; carry ours out as a value.
        let failure = output.withUnsafeMutableBytes { (raw) -> Base64Error? in
            do throws(Base64Error) {
                _ = try decode(input, into: UnsafeMutableRawBufferPointer(rebasing: raw[start...]))
                return nil
            } catch {
                return error
            }
        }
        if let failure {
            output.removeSubrange(start...)
            throw failure
        }
    }

    /// Convenience for small, cold data (handshake, tests).
    package static func decode(_ string: String) throws(Base64Error) -> [UInt8] {
        var output: [UInt8] = []
        let bytes = Array(string.utf8)
        let failure = bytes.withUnsafeBytes { (raw) -> Base64Error? in
            do throws(Base64Error) { try decode(raw, appendingTo: &output) } catch { return error }
            return nil
        }
        if let failure { throw failure }
        return output
    }

    /// Walks `input` (length already checked to be a multiple of 4) one quad at a time and
    /// hands each 24-bit group to `body` with the number of real bytes it holds (3, or 1–2
    /// for a padded last quad).
    @inline(__always)
    static func forEachGroup(
        _ input: UnsafeRawBufferPointer,
        _ body: (_ group: UInt32, _ byteCount: Int) -> Void
    ) throws(Base64Error) {
        let count = input.count
        guard count > 0, let bytes = input.baseAddress else { return }
        try decodeTable.withUnsafeBufferPointer { (table) throws(Base64Error) in
            @inline(__always)
            func value(_ offset: Int) -> UInt32 {
                UInt32(table[Int(bytes.load(fromByteOffset: offset, as: UInt8.self))])
            }
            func firstInvalid(in quadStart: Int) -> Int {
                for offset in quadStart..<(quadStart + 4) where value(offset) == 0xFF { return offset }
                return quadStart
            }
            let lastQuad = count - 4
            var offset = 0
            while offset < lastQuad {
                let v0 = value(offset), v1 = value(offset + 1), v2 = value(offset + 2), v3 = value(offset + 3)
                // Every valid entry is < 64, so one test on the OR finds any 0xFF.
                guard (v0 | v1 | v2 | v3) & 0x80 == 0 else { throw .invalidCharacter(offset: firstInvalid(in: offset)) }
                body(v0 << 18 | v1 << 12 | v2 << 6 | v3, 3)
                offset += 4
            }
            // The last quad may carry padding.
            let c2 = bytes.load(fromByteOffset: offset + 2, as: UInt8.self)
            let c3 = bytes.load(fromByteOffset: offset + 3, as: UInt8.self)
            let v0 = value(offset), v1 = value(offset + 1)
            guard (v0 | v1) & 0x80 == 0 else { throw .invalidCharacter(offset: firstInvalid(in: offset)) }
            if c3 != pad {
                let v2 = value(offset + 2), v3 = value(offset + 3)
                guard (v2 | v3) & 0x80 == 0 else { throw .invalidCharacter(offset: firstInvalid(in: offset)) }
                body(v0 << 18 | v1 << 12 | v2 << 6 | v3, 3)
            } else if c2 != pad {
                let v2 = value(offset + 2)
                guard v2 & 0x80 == 0 else { throw .invalidCharacter(offset: offset + 2) }
                guard v2 & 0x03 == 0 else { throw .invalidPadding(offset: offset + 2) }
                body(v0 << 18 | v1 << 12 | v2 << 6, 2)
            } else {
                guard v1 & 0x0F == 0 else { throw .invalidPadding(offset: offset + 1) }
                body(v0 << 18 | v1 << 12, 1)
            }
        }
    }
}
