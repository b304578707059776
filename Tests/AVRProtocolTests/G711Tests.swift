import Testing
@testable import AVRProtocol

/// A second, independent G.711 implementation in the style of the classic Sun `g711.c`
/// (segment end tables and a linear search), with G.191's one's-complement treatment of
/// negative μ-law input. The production code is compared with it over every input.
enum ReferenceG711 {
    static let muLawSegmentEnds: [Int] = [0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF]
    static let aLawSegmentEnds: [Int] = [0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF]

    static func segment(_ value: Int, _ ends: [Int]) -> Int {
        ends.firstIndex { value <= $0 } ?? 8
    }

    static func muLaw(_ sample: Int16) -> UInt8 {
        let pcm = Int(sample)
        let mask = pcm < 0 ? 0x7F : 0xFF
        let magnitude = min((pcm < 0 ? -pcm - 1 : pcm) >> 2, 8159) + 33
        let seg = segment(magnitude, muLawSegmentEnds)
        if seg >= 8 { return UInt8(0x7F ^ mask) }
        return UInt8(((seg << 4) | ((magnitude >> (seg + 1)) & 0x0F)) ^ mask)
    }

    static func aLaw(_ sample: Int16) -> UInt8 {
        var pcm = Int(sample) >> 3
        let mask: Int
        if pcm >= 0 { mask = 0xD5 } else { mask = 0x55; pcm = -pcm - 1 }
        let seg = segment(pcm, aLawSegmentEnds)
        if seg >= 8 { return UInt8(0x7F ^ mask) }
        let mantissa = seg < 2 ? (pcm >> 1) & 0x0F : (pcm >> seg) & 0x0F
        return UInt8(((seg << 4) | mantissa) ^ mask)
    }

    static func muLawToLinear(_ code: UInt8) -> Int16 {
        let u = Int(~code)
        var t = ((u & 0x0F) << 3) + 0x84
        t <<= (u & 0x70) >> 4
        return Int16(u & 0x80 != 0 ? 0x84 - t : t - 0x84)
    }

    static func aLawToLinear(_ code: UInt8) -> Int16 {
        let a = Int(code ^ 0x55)
        var t = (a & 0x0F) << 4
        let seg = (a & 0x70) >> 4
        switch seg {
        case 0: t += 8
        case 1: t += 0x108
        default: t += 0x108; t <<= seg - 1
        }
        return Int16(a & 0x80 != 0 ? t : -t)
    }
}

@Suite struct G711Tests {
    @Test func knownDecodedValues() {
        let muLaw: [(UInt8, Int16)] = [
            (0xFF, 0), (0x7F, 0), (0x00, -32124), (0x80, 32124), (0x01, -31100), (0x0F, -16764),
            (0x10, -15996), (0x7E, -8), (0xFE, 8), (0x70, -120), (0xF0, 120), (0x8F, 16764), (0xC3, 1692),
        ]
        for (code, value) in muLaw {
            #expect(G711.muLawDecode(code) == value, "μ-law \(code)")
        }
        let aLaw: [(UInt8, Int16)] = [
            (0xD5, 8), (0x55, -8), (0x2A, -32256), (0xAA, 32256), (0x00, -5504), (0x80, 5504),
            (0xD4, 24), (0x54, -24), (0x25, -16896), (0xA5, 16896), (0x7F, -848), (0xFF, 848), (0xC0, 344),
        ]
        for (code, value) in aLaw {
            #expect(G711.aLawDecode(code) == value, "A-law \(code)")
        }
    }

    @Test func knownEncodedValues() {
        let vectors: [(Int16, UInt8, UInt8)] = [
            (0, 0xFF, 0xD5), (1, 0xFF, 0xD5), (-1, 0x7F, 0x55), (-2, 0x7F, 0x55), (-4, 0x7F, 0x55),
            (-5, 0x7E, 0x55), (8, 0xFE, 0xD5), (-8, 0x7E, 0x55), (100, 0xF2, 0xD3), (-100, 0x73, 0x53),
            (1000, 0xCE, 0xFA), (-1000, 0x4E, 0x7A), (12345, 0x97, 0xBD), (-12345, 0x17, 0x3D),
            (32124, 0x80, 0xAA), (-32124, 0x00, 0x2A), (32767, 0x80, 0xAA), (-32768, 0x00, 0x2A),
        ]
        for (sample, muLaw, aLaw) in vectors {
            #expect(G711.muLaw(sample) == muLaw, "μ-law of \(sample)")
            #expect(G711.aLaw(sample) == aLaw, "A-law of \(sample)")
        }
    }

    @Test func tablesMatchTheReference() {
        for code in 0...255 {
            #expect(G711.muLawTable[code] == ReferenceG711.muLawToLinear(UInt8(code)))
            #expect(G711.aLawTable[code] == ReferenceG711.aLawToLinear(UInt8(code)))
        }
    }

    @Test func encodersMatchTheReferenceForEverySample() {
        var muLawMismatches = 0, aLawMismatches = 0
        for value in Int(Int16.min)...Int(Int16.max) {
            let sample = Int16(value)
            if G711.muLaw(sample) != ReferenceG711.muLaw(sample) { muLawMismatches += 1 }
            if G711.aLaw(sample) != ReferenceG711.aLaw(sample) { aLawMismatches += 1 }
        }
        #expect(muLawMismatches == 0)
        #expect(aLawMismatches == 0)
    }

    @Test func everyCodeRoundTrips() {
        for code in 0...255 {
            let byte = UInt8(code)
            // μ-law has two zeros; 0x7F (negative zero) comes back as 0xFF.
            #expect(G711.muLaw(G711.muLawDecode(byte)) == (byte == 0x7F ? 0xFF : byte), "μ-law \(code)")
            #expect(G711.aLaw(G711.aLawDecode(byte)) == byte, "A-law \(code)")
        }
    }

    @Test func decodingIsMonotonicPerSign() {
        // μ-law: 0x80…0xFF positive descending, 0x00…0x7F negative ascending.
        for code in 0x80..<0xFF { #expect(G711.muLawTable[code] > G711.muLawTable[code + 1]) }
        for code in 0x00..<0x7F { #expect(G711.muLawTable[code] < G711.muLawTable[code + 1]) }
        // A-law: sorted by (code ^ 0x55) within each sign.
        let positives = (0x80...0xFF).map { G711.aLawTable[$0 ^ 0x55] }
        #expect(positives == positives.sorted())
        #expect(Set(G711.aLawTable).count == 256)
    }

    @Test func quantisationErrorIsBounded() {
        // Every sample decodes back within half a step of the segment it falls in.
        for value in stride(from: -32768, through: 32767, by: 7) {
            let sample = Int16(value)
            let muError = abs(Int(G711.muLawDecode(G711.muLaw(sample))) - value)
            let aError = abs(Int(G711.aLawDecode(G711.aLaw(sample))) - value)
            #expect(muError <= max(8, abs(value) / 16 + 4) || abs(value) > 32124, "μ-law \(value)")
            #expect(aError <= max(8, abs(value) / 16 + 8) || abs(value) > 32256, "A-law \(value)")
        }
    }

    @Test func bulkDecodeIntoCallerBuffer() {
        let payload: [UInt8] = [0xFF, 0x00, 0x80, 0x7E, 0xD5]
        var output = [Int16](repeating: 99, count: 4)
        let written = payload.withUnsafeBytes { raw in
            output.withUnsafeMutableBufferPointer { G711.decodeMuLaw(raw, into: $0) }
        }
        #expect(written == 4)
        #expect(output == [0, -32124, 32124, -8])

        var aOutput = [Int16](repeating: 99, count: 8)
        let aWritten = payload.withUnsafeBytes { raw in
            aOutput.withUnsafeMutableBufferPointer { AudioCodec.alaw.decode(raw, into: $0) }
        }
        #expect(aWritten == 5)
        #expect(Array(aOutput.prefix(5)) == payload.map { G711.aLawDecode($0) })
        #expect(aOutput[5] == 99)
    }

    @Test func appendLittleEndian() {
        let payload: [UInt8] = [0x00, 0x80, 0xFF]
        var output: [UInt8] = [0x01]
        payload.withUnsafeBytes { G711.appendMuLawAsLittleEndian($0, to: &output) }
        // -32124 = 0x8284, 32124 = 0x7D7C, 0.
        #expect(output == [0x01, 0x84, 0x82, 0x7C, 0x7D, 0x00, 0x00])

        var aOutput: [UInt8] = []
        [UInt8(0xD5), 0x2A].withUnsafeBytes { AudioCodec.alaw.appendLittleEndian(decoding: $0, to: &aOutput) }
        // 8 = 0x0008, -32256 = 0x8200.
        #expect(aOutput == [0x08, 0x00, 0x00, 0x82])

        var slin: [UInt8] = []
        [UInt8(1), 2, 3].withUnsafeBytes { AudioCodec.slin.appendLittleEndian(decoding: $0, to: &slin) }
        #expect(slin == [1, 2])
    }

    @Test func codecDecodeAndEncodeSlin() {
        let samples: [Int16] = [0, 1, -1, 32767, -32768, 256]
        var bytes = [UInt8](repeating: 0, count: 12)
        samples.withUnsafeBufferPointer { s in bytes.withUnsafeMutableBytes { AudioCodec.slin.encode(s, into: $0) } }
        #expect(bytes == [0, 0, 1, 0, 0xFF, 0xFF, 0xFF, 0x7F, 0x00, 0x80, 0x00, 0x01])
        var decoded = [Int16](repeating: 0, count: 6)
        let count = bytes.withUnsafeBytes { raw in decoded.withUnsafeMutableBufferPointer { AudioCodec.slin.decode(raw, into: $0) } }
        #expect(count == 6)
        #expect(decoded == samples)
        #expect(AudioCodec.allCases.map(\.description) == ["SLIN", "ULAW", "ALAW"])
    }
}
