/// Background noise mixed under every outbound frame (`AMBIENT_NOISE_FILE`), so the line
/// sounds like a room rather than going dead between answers.
///
/// The noise is scaled once, at creation, and looped from where the last frame stopped, so the
/// loop has no seam other than the file's own. Mixing saturates at the 16-bit limits instead
/// of wrapping round, which would turn a loud peak into a full-scale click.
package struct AmbientNoise: Sendable {
    /// The level it was created with, 0…1.
    package let level: Double
    /// The noise, already multiplied by `level`.
    private let scaled: [Int16]
    /// The next noise sample to mix.
    package private(set) var position = 0

    /// `samples` at `level` (clamped to 0…1).
    package init(samples: [Int16], level: Double) {
        let level = level.isNaN ? 0 : min(max(level, 0), 1)
        self.level = level
        scaled = samples.map { Int16(PortableMath.roundedToInt(Double($0) * level)) }
    }

    /// The contents of a raw 8 kHz mono s16le file; an odd last byte is ignored.
    package init<Bytes: Collection>(pcmLittleEndian bytes: Bytes, level: Double) where Bytes.Element == UInt8 {
        var samples: [Int16] = []
        samples.reserveCapacity(bytes.count / 2)
        var low: UInt8?
        for byte in bytes {
            if let first = low {
                samples.append(Int16(bitPattern: UInt16(first) | UInt16(byte) << 8))
                low = nil
            } else {
                low = byte
            }
        }
        self.init(samples: samples, level: level)
    }

    /// Samples in the loop.
    package var sampleCount: Int { scaled.count }

    /// Adds the next `frame.count` noise samples to `frame`, clamping to the Int16 range.
    package mutating func mix(into frame: UnsafeMutableBufferPointer<Int16>) {
        guard !scaled.isEmpty, level > 0 else { return }
        var position = self.position
        scaled.withUnsafeBufferPointer { noise in
            for index in frame.indices {
                let sum = Int32(frame[index]) + Int32(noise[position])
                frame[index] = Int16(clamping: sum)
                position += 1
                if position == noise.count { position = 0 }
            }
        }
        self.position = position
    }
}
