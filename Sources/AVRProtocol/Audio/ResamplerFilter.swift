/// The polyphase low-pass behind ``Resampler`` for one input rate, designed once per process
/// and shared by every call at that rate (the 44.1 kHz one holds 17 680 coefficients).
///
/// Design: conceptually upsample by `interpolation` (L), low-pass, keep every
/// `decimation`-th (M) sample, with L/M = 8000/inputRate reduced (44.1 kHz: 80/441). The
/// prototype is a Kaiser-windowed sinc (β = 6.76, ≈70 dB stopband) with its -6 dB point at
/// 3.7 kHz and `inputRate / 200` taps per phase, giving a transition of ≈0.86 kHz: flat to
/// ≈3.27 kHz (the telephone band ends at 3.4 kHz), ≥70 dB down from ≈4.13 kHz, so what
/// folds around the 4 kHz output Nyquist lands above 3.4 kHz, well below audibility.
package final class ResamplerFilter: Sendable {
    /// Input sample rate in Hz.
    package let inputRate: Int
    /// L: phases of the polyphase filter.
    package let interpolation: Int
    /// M: input steps (in 1/L units) between outputs.
    package let decimation: Int
    /// Taps per phase (the input samples each output sample is computed from).
    package let tapsPerPhase: Int
    /// Phase-major, each phase reversed so the dot product runs forward over the input:
    /// `coefficients[p * tapsPerPhase + j]` multiplies `x[n - tapsPerPhase + 1 + j]`.
    let coefficients: [Float]

    /// The shared filter for `inputRate`, or `nil` when AudioSocket has no such rate (or it is
    /// 8 kHz, which needs none).
    package static func shared(inputRate: Int) -> ResamplerFilter? {
        switch inputRate {
        case 12000: rate12k
        case 16000: rate16k
        case 24000: rate24k
        case 32000: rate32k
        case 44100: rate44_1k
        case 48000: rate48k
        case 96000: rate96k
        case 192000: rate192k
        default: nil
        }
    }

    private static let rate12k = ResamplerFilter(inputRate: 12000)
    private static let rate16k = ResamplerFilter(inputRate: 16000)
    private static let rate24k = ResamplerFilter(inputRate: 24000)
    private static let rate32k = ResamplerFilter(inputRate: 32000)
    private static let rate44_1k = ResamplerFilter(inputRate: 44100)
    private static let rate48k = ResamplerFilter(inputRate: 48000)
    private static let rate96k = ResamplerFilter(inputRate: 96000)
    private static let rate192k = ResamplerFilter(inputRate: 192000)

    /// Designs the filter for `inputRate` → 8 kHz (any rate above 8 kHz).
    init(inputRate: Int, outputRate: Int = 8000, cutoff: Double = 3700, beta: Double = 6.76) {
        precondition(inputRate > outputRate && outputRate > 0)
        var a = inputRate, b = outputRate
        while b != 0 { (a, b) = (b, a % b) }
        let interpolation = outputRate / a
        let decimation = inputRate / a
        let taps = (inputRate + 199) / 200
        let prototype = FilterDesign.lowPass(
            length: taps * interpolation,
            cutoff: cutoff / Double(inputRate * interpolation),
            beta: beta,
            gain: Double(interpolation))
        var coefficients = [Float](repeating: 0, count: taps * interpolation)
        for phase in 0..<interpolation {
            for j in 0..<taps {
                coefficients[phase * taps + j] = Float(prototype[(taps - 1 - j) * interpolation + phase])
            }
        }
        self.inputRate = inputRate
        self.interpolation = interpolation
        self.decimation = decimation
        self.tapsPerPhase = taps
        self.coefficients = coefficients
    }
}
