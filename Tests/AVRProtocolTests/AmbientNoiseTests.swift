import Testing
@testable import AVRProtocol

@Suite struct AmbientNoiseTests {
    static func mix(_ noise: inout AmbientNoise, into frame: [Int16]) -> [Int16] {
        var frame = frame
        frame.withUnsafeMutableBufferPointer { noise.mix(into: $0) }
        return frame
    }

    @Test func saturatesInsteadOfWrapping() {
        var noise = AmbientNoise(samples: [2000, -2000, 32767, -32768], level: 1)
        let mixed = Self.mix(&noise, into: [32000, -32000, 100, -100])
        #expect(mixed == [32767, -32768, 32767, -32768])
        var full = AmbientNoise(samples: [32767, -32768], level: 1)
        #expect(Self.mix(&full, into: [32767, -32768]) == [32767, -32768])
    }

    @Test func scalesByLevel() {
        var noise = AmbientNoise(samples: [1000, -1000, 3, -3], level: 0.5)
        #expect(Self.mix(&noise, into: [0, 0, 0, 0]) == [500, -500, 2, -2])
        var loud = AmbientNoise(samples: [1000], level: 7)
        #expect(loud.level == 1)
        #expect(Self.mix(&loud, into: [1]) == [1001])
    }

    @Test func mutedOrEmptyLeavesTheFrame() {
        var muted = AmbientNoise(samples: [1000, 2000], level: 0)
        #expect(Self.mix(&muted, into: [5, 6, 7]) == [5, 6, 7])
        var empty = AmbientNoise(samples: [], level: 1)
        #expect(Self.mix(&empty, into: [5, 6, 7]) == [5, 6, 7])
        var nan = AmbientNoise(samples: [1000], level: .nan)
        #expect(Self.mix(&nan, into: [5]) == [5])
    }

    @Test func loopsAcrossFrames() {
        var noise = AmbientNoise(samples: [1, 2, 3], level: 1)
        let silence = [Int16](repeating: 0, count: 160)
        let first = Self.mix(&noise, into: silence)
        #expect(Array(first.prefix(7)) == [1, 2, 3, 1, 2, 3, 1])
        // 160 = 53 × 3 + 1: the next frame continues with 2.
        #expect(noise.position == 1)
        let second = Self.mix(&noise, into: silence)
        #expect(Array(second.prefix(4)) == [2, 3, 1, 2])
    }

    @Test func fromRawFileBytes() {
        // 0x0102, -2, then a stray odd byte that is ignored.
        var noise = AmbientNoise(pcmLittleEndian: [0x02, 0x01, 0xFE, 0xFF, 0x33], level: 1)
        #expect(noise.sampleCount == 2)
        #expect(Self.mix(&noise, into: [0, 0, 0]) == [0x0102, -2, 0x0102])
    }
}
