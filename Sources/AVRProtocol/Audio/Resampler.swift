/// Streams signed-linear audio at 12…192 kHz down to 8 kHz, frame after frame, as if the whole
/// call were one signal: the last input samples are kept between calls, so frame boundaries
/// add no clicks, and feeding any chunking of the same bytes gives bit-identical output.
///
/// The filter (see ``ResamplerFilter``) is shared; per call the resampler holds only the
/// input history (a few hundred samples) and reuses that storage, so steady-state processing
/// does not allocate beyond growing the caller's output.
package struct Resampler: Sendable {
    /// Output rate in Hz.
    package static let outputRate = 8000

    package let filter: ResamplerFilter
    /// Input samples: the last `tapsPerPhase - 1` already used, then those not yet used.
    private var history: [Float]
    /// The next output's position, in 1/L input samples from `history[0]`.
    private var position: Int
    /// The first byte of a sample split across two inputs.
    private var pendingByte: UInt8?

    /// `nil` for a rate AudioSocket does not define, and for 8 kHz (nothing to do).
    package init?(inputRate: Int) {
        guard let filter = ResamplerFilter.shared(inputRate: inputRate) else { return nil }
        self.filter = filter
        history = [Float](repeating: 0, count: filter.tapsPerPhase - 1)
        history.reserveCapacity(filter.tapsPerPhase + 4096)
        position = (filter.tapsPerPhase - 1) * filter.interpolation
    }

    /// Input sample rate in Hz.
    package var inputRate: Int { filter.inputRate }

    /// Resamples s16le bytes (any length; an odd last byte waits for the next call) and
    /// appends the 8 kHz samples to `output`.
    package mutating func process(_ input: UnsafeRawBufferPointer, appendingTo output: inout [Int16]) {
        run(input) { output.append($0) }
    }

    /// Resamples s16le bytes and appends the 8 kHz samples as s16le bytes.
    package mutating func process(_ input: UnsafeRawBufferPointer, appendingLittleEndianTo output: inout [UInt8]) {
        run(input) { sample in
            let bits = UInt16(bitPattern: sample)
            output.append(UInt8(truncatingIfNeeded: bits))
            output.append(UInt8(truncatingIfNeeded: bits >> 8))
        }
    }

    /// Forgets the history (a new, unrelated stream).
    package mutating func reset() {
        history.removeAll(keepingCapacity: true)
        history.append(contentsOf: repeatElement(0, count: filter.tapsPerPhase - 1))
        position = (filter.tapsPerPhase - 1) * filter.interpolation
        pendingByte = nil
    }

    @inline(__always)
    private mutating func run(_ input: UnsafeRawBufferPointer, emit: (Int16) -> Void) {
        appendSamples(input)
        let filter = self.filter
        let taps = filter.tapsPerPhase
        let phases = filter.interpolation
        let step = filter.decimation
        var position = self.position
        history.withUnsafeBufferPointer { samples in
            filter.coefficients.withUnsafeBufferPointer { coefficients in
                while position / phases < samples.count {
                    let newest = position / phases
                    let phase = position % phases
                    let first = newest - taps + 1
                    let base = phase * taps
                    var sum: Float = 0
                    for j in 0..<taps {
                        sum += coefficients[base + j] * samples[first + j]
                    }
                    emit(PortableMath.roundedToInt16(sum))
                    position += step
                }
            }
        }
        // Keep what the next output needs: from its newest input back over `taps - 1` more.
        let firstNeeded = position / phases - (taps - 1)
        let drop = min(max(firstNeeded, 0), history.count)
        if drop > 0 {
            history.removeSubrange(0..<drop)
            position -= drop * phases
        }
        self.position = position
    }

    private mutating func appendSamples(_ input: UnsafeRawBufferPointer) {
        var index = 0
        if let low = pendingByte, !input.isEmpty {
            history.append(Float(Int16(bitPattern: UInt16(low) | UInt16(input[0]) << 8)))
            pendingByte = nil
            index = 1
        }
        while index + 1 < input.count {
            history.append(Float(Int16(bitPattern: UInt16(input[index]) | UInt16(input[index + 1]) << 8)))
            index += 2
        }
        if index < input.count { pendingByte = input[index] }
    }
}
