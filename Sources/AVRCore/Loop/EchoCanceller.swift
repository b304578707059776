internal import CSpeexDSP

/// libspeexdsp's acoustic echo canceller (the MDF adaptive filter, a frequency-domain NLMS
/// with its own double-talk control), for one call. It learns the path from `reference` (what
/// was played) to its echo in `caller` and subtracts it. Allocates its state once (about
/// 20 KB for an 80 ms filter); `cancel` does not allocate.
package final class EchoCanceller {
    private let state: OpaquePointer
    /// Samples per `cancel` call.
    package let frameSamples: Int
    /// Length of the echo path the filter can model, in samples.
    package let filterSamples: Int
    /// Values the filter reads back as (`dominantBlock`): its blocks of `frameSamples`.
    package let impulseSamples: Int

    package init(frameSamples: Int, filterSamples: Int, sampleRate: Int32 = 8000) {
        self.frameSamples = frameSamples
        self.filterSamples = filterSamples
        state = speex_echo_state_init(Int32(frameSamples), Int32(filterSamples))
        var rate = sampleRate
        speex_echo_ctl(state, SPEEX_ECHO_SET_SAMPLING_RATE, &rate)
        var size: Int32 = 0
        speex_echo_ctl(state, SPEEX_ECHO_GET_IMPULSE_RESPONSE_SIZE, &size)
        impulseSamples = Int(size)
    }

    deinit { speex_echo_state_destroy(state) }

    /// One frame: `caller` (what the line returned) less the echo of `reference` (what was on
    /// the line at the same time), into `out`. All three hold `frameSamples` samples.
    package func cancel(caller: UnsafePointer<Int16>, reference: UnsafePointer<Int16>, into out: UnsafeMutablePointer<Int16>) {
        speex_echo_cancellation(state, caller, reference, out)
    }

    /// Which `frameSamples` block of the learnt filter holds most of its energy (the frames
    /// after the reference where the filter has the echo), when that block holds at least
    /// `share` of it; nil otherwise (nothing learnt, or spread out). Reads the filter back
    /// (`SPEEX_ECHO_GET_IMPULSE_RESPONSE`: an inverse FFT per block) into `scratch`, which must
    /// hold `impulseSamples` values; for occasional use, not per frame.
    package func dominantBlock(share: Float, scratch: UnsafeMutableBufferPointer<Int32>) -> Int? {
        precondition(scratch.count >= impulseSamples)
        speex_echo_ctl(state, SPEEX_ECHO_GET_IMPULSE_RESPONSE, scratch.baseAddress!)
        var best = 0
        var bestEnergy: Float = 0
        var total: Float = 0
        for block in 0..<impulseSamples / frameSamples {
            var energy: Float = 0
            for index in block * frameSamples..<(block + 1) * frameSamples {
                let value = Float(scratch[index])
                energy += value * value
            }
            total += energy
            if energy > bestEnergy {
                bestEnergy = energy
                best = block
            }
        }
        return total > 0 && bestEnergy >= share * total ? best : nil
    }

    /// Forget the learned path (the reference was moved to another delay).
    package func reset() { speex_echo_state_reset(state) }
}
