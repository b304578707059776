/// Speech probability of each analysis frame, after Sohn, Kim & Sung, "A statistical
/// model-based voice activity detection", IEEE Signal Processing Letters 6(1), 1999:
///
/// - 256-point real FFT of the last 256 samples (Hann window), bins 6…109 (187–3406 Hz: the
///   telephone band, clear of DC and mains hum);
/// - noise power per bin λ_N(k) by minimum statistics (Martin, IEEE TSAP 2001, simplified):
///   the minimum of the recursively smoothed periodogram over ~1.3 s, times a bias factor,
///   never below a −70 dBFS white-noise floor;
/// - a-posteriori SNR γ_k = |X_k|²/λ_N(k) and the decision-directed a-priori SNR
///   ξ_k = α·Â²_k(t−1)/λ_N(k) + (1−α)·max(γ_k−1, 0) (Ephraim & Malah 1984), Â² from the
///   Wiener gain;
/// - per-bin log likelihood ratio log Λ_k = γ_k·ξ_k/(1+ξ_k) − ln(1+ξ_k), averaged over the
///   bins (the log of the geometric mean, Sohn's statistic L). Each bin's term is capped so
///   that a few strong bins (a tone) cannot outvote the band;
/// - the probability p = 1/(1 + e^(−s·(L−η))): 0.5 exactly at Sohn's decision threshold η.
///
/// State is one array allocated at `init` (~5 KB); `analyse` allocates nothing.
struct SohnSpeechEstimator: Sendable {
    static let lowBin = 6
    static let highBin = 109
    static let binCount = highBin - lowBin + 1
    /// Smoothing of the periodogram for minimum statistics.
    static let powerSmoothing: Float = 0.85
    /// Minimum statistics: the window is `subwindows` × `framesPerSubwindow`.
    static let subwindows = 4
    /// Minimum statistics under-estimate the mean of the noise; measured on white and pink noise.
    static let minimumBias: Float = 2.2
    /// Decision-directed smoothing (Ephraim & Malah's 0.98) and the a-priori SNR floor (−25 dB).
    static let decisionDirected: Float = 0.98
    static let minimumPrioriSNR: Float = 0.003_162
    /// Cap of a bin's log likelihood ratio (nats).
    static let binCap: Float = 3
    /// Sohn's threshold η on L, and the slope s of the probability around it.
    static let threshold: Float = 0.25
    static let slope: Float = 12
    /// The first frames (160 ms at 20 ms per frame) only learn the noise: the periodogram is
    /// averaged, no minimum is taken from a half-filled window, and no frame is speech.
    static let warmupFrames = 8
    /// Frames quieter than this in the band (dBFS, RMS re 32768) are not speech.
    static let silenceDBFS: Float = -55

    private static let ringOffset = 0
    private static let reOffset = 256
    private static let imOffset = 384
    private static let smoothedOffset = 512
    private static let currentMinOffset = smoothedOffset + binCount
    private static let cleanOffset = currentMinOffset + binCount
    private static let subMinOffset = cleanOffset + binCount
    private static let storageCount = subMinOffset + subwindows * binCount

    private var storage: [Float]
    private let framesPerSubwindow: Int
    private var ringIndex = 0
    private var subwindowFrame = 0
    private var subwindowSlot = 0
    private var frames = 0
    private let noiseFloor: Float
    private let silencePower: Float

    /// Sohn's statistic L of the last frame.
    private(set) var statistic: Float = 0
    /// Mean square of the band in the last frame (sample units²).
    private(set) var bandPower: Float = 0

    init(frameSamples: Int) {
        storage = [Float](repeating: 0, count: Self.storageCount)
        framesPerSubwindow = max(1, 2560 / max(frameSamples, 1))
        let floorSigma = 32768 * VADMath.exp(-70 / 20 * 2.302_585)
        noiseFloor = floorSigma * floorSigma * VADMath.windowPower
        let silenceSigma = 32768 * VADMath.exp(Self.silenceDBFS / 20 * 2.302_585)
        silencePower = silenceSigma * silenceSigma
        storage.withUnsafeMutableBufferPointer { buffer in
            for index in 0..<(Self.subwindows * Self.binCount) {
                buffer[Self.subMinOffset + index] = .infinity
            }
            for index in 0..<Self.binCount { buffer[Self.currentMinOffset + index] = .infinity }
        }
    }

    /// Appends one sample to the analysis window.
    @inline(__always)
    mutating func push(_ sample: Int16) {
        storage.withUnsafeMutableBufferPointer { $0[ringIndex] = Float(sample) }
        ringIndex = (ringIndex + 1) & (VADMath.fftSize - 1)
    }

    /// Analyses the last 256 samples; returns the speech probability in [0, 1].
    mutating func analyse() -> Float {
        let ringStart = ringIndex
        frames += 1
        let warmingUp = frames <= Self.warmupFrames
        let warmupWeight = 1 / Float(frames)
        if !warmingUp { subwindowFrame += 1 }
        let closesSubwindow = subwindowFrame >= framesPerSubwindow
        if closesSubwindow { subwindowFrame = 0 }
        var slot = subwindowSlot
        let noiseFloor = self.noiseFloor
        var logSum: Float = 0
        var bandSum: Float = 0
        VADMath.hann.withUnsafeBufferPointer { hann in
        VADMath.bitReversed.withUnsafeBufferPointer { reversed in
        VADMath.twiddleCos.withUnsafeBufferPointer { cos in
        VADMath.twiddleSin.withUnsafeBufferPointer { sin in
        storage.withUnsafeMutableBufferPointer { buffer in
            let base = buffer.baseAddress!
            let ring = base + Self.ringOffset
            let re = base + Self.reOffset, im = base + Self.imOffset
            VADMath.transform(ring: ring, start: ringStart, re: re, im: im, hann: hann.baseAddress!,
                              reversed: reversed.baseAddress!, cos: cos.baseAddress!, sin: sin.baseAddress!)
            let smoothed = base + Self.smoothedOffset
            let currentMin = base + Self.currentMinOffset
            let clean = base + Self.cleanOffset
            let subMin = base + Self.subMinOffset
            let a = Self.powerSmoothing
            for bin in 0..<Self.binCount {
                let k = Self.lowBin + bin
                let power = VADMath.power(bin: k, re: re, im: im, cos: cos.baseAddress!, sin: sin.baseAddress!)
                bandSum += power
                // Minimum statistics.
                if warmingUp {
                    smoothed[bin] += (power - smoothed[bin]) * warmupWeight
                    continue
                }
                let p = a * smoothed[bin] + (1 - a) * power
                smoothed[bin] = p
                var minimum = min(currentMin[bin], p)
                currentMin[bin] = minimum
                for u in 0..<Self.subwindows { minimum = min(minimum, subMin[u * Self.binCount + bin]) }
                if closesSubwindow {
                    subMin[slot * Self.binCount + bin] = currentMin[bin]
                    currentMin[bin] = .infinity
                }
                let noise = max(Self.minimumBias * minimum, noiseFloor)
                // Sohn's likelihood ratio with the decision-directed a-priori SNR.
                let gamma = min(power / noise, 1e6)
                let xi = max(Self.decisionDirected * clean[bin] / noise + (1 - Self.decisionDirected) * max(gamma - 1, 0),
                             Self.minimumPrioriSNR)
                let ratio = xi / (1 + xi)
                let logLambda = gamma * ratio - VADMath.ln(1 + xi)
                logSum += min(logLambda, Self.binCap)
                clean[bin] = ratio * ratio * power
            }
        }
        }
        }
        }
        }
        if closesSubwindow { slot = (slot + 1) % Self.subwindows; subwindowSlot = slot }
        statistic = logSum / Float(Self.binCount)
        // Parseval: the band's share of the window's mean square (both half-spectra).
        bandPower = 2 * bandSum / (Float(VADMath.fftSize) * VADMath.windowPower)
        guard !warmingUp, bandPower >= silencePower else { return 0 }
        return 1 / (1 + VADMath.exp(-Self.slope * (statistic - Self.threshold)))
    }
}
