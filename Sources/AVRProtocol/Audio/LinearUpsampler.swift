/// Raises 8 kHz PCM (the agent's audio) to a higher rate by linear interpolation, for a caller
/// whose channel takes signed linear above 8 kHz (the WebSocket channel's `slin16` and up
/// only accept their own rate). The input is band-limited to 4 kHz already, so nothing is
/// lost; linear interpolation leaves faint images above 4 kHz, which a phone path hides.
/// Streaming: the last sample and the phase carry over from one frame to the next.
package struct LinearUpsampler: Sendable {
    package let outputRate: Int
    private var previous: Int32 = 0
    /// Position of the next output sample between `previous` and the next input sample, in
    /// units of 1/`outputRate` of an input sample period.
    private var phase = 0

    package init(outputRate: Int) {
        precondition(outputRate >= 8000, "only upsampling")
        self.outputRate = outputRate
    }

    /// The most samples `inputCount` samples can produce.
    package func maximumOutput(for inputCount: Int) -> Int {
        (inputCount * outputRate + 7999) / 8000 + 1
    }

    /// Writes the samples as 16-bit little-endian bytes into `output` (at least
    /// `2 * maximumOutput(for: input.count)` bytes); returns the bytes written.
    package mutating func process(_ input: UnsafeBufferPointer<Int16>, into output: UnsafeMutableRawBufferPointer) -> Int {
        precondition(output.count >= 2 * maximumOutput(for: input.count), "output too small")
        var written = 0
        let step = 8000
        for sample in input {
            let current = Int32(sample)
            while phase < outputRate {
                let value = previous + (current - previous) * Int32(phase) / Int32(outputRate)
                let bits = UInt16(bitPattern: Int16(truncatingIfNeeded: value))
                output[written] = UInt8(truncatingIfNeeded: bits)
                output[written + 1] = UInt8(truncatingIfNeeded: bits >> 8)
                written += 2
                phase += step
            }
            phase -= outputRate
            previous = current
        }
        return written
    }
}
