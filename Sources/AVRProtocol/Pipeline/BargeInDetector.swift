/// Caller-side voice activity with echo rejection, for barge-in: fed every 20 ms caller frame
/// (160 samples, 8 kHz) and every frame the agent played. Pure, no allocation per frame: all
/// state is allocated once in `init` (about 5 KB).
///
/// A caller frame counts as speech when
/// 1. the statistical detector (`SohnSpeechEstimator`) gives it a speech probability at or
///    above `VAD_POSITIVE_SPEECH_THRESHOLD`, and
/// 2. it passes the echo gate, an energy form of the Geigel double-talk detector (Duttweiler
///    1978): its band power exceeds the loudest agent frame played in the last 250 ms minus
///    the loss measured on this line (`echoLoss`, an `EchoPathEstimator` over the frames the
///    detector is given: the raw line, or what the echo canceller left) less its spread
///    (`echoSpreadFactor` standard deviations) and `echoMarginDecibels`. Until the line is measured the gate assumes the worst loss a line
///    may have (`echoUnmeasuredLossDecibels`). The agent's own voice reflected by the line
///    stays below that, the caller talking over it does not.
/// The `SpeechHangover` turns those frames into `speechStarted` / `speechEnded`.
package struct BargeInDetector: Sendable {
    package let configuration: VADConfiguration
    private var estimator: SohnSpeechEstimator
    private var hangover: SpeechHangover
    /// Loudest agent frame power (mean square) per caller-frame slot, a ring of
    /// `echoWindowFrames` slots; `echoSlot` is the current one.
    private var echoPowers: [Float]
    private var echoSlot = 0
    /// The loss from the loudest recent agent frame to what the detector hears of it.
    package private(set) var echoLoss = EchoPathEstimator(lags: 1)
    /// How far under the loudest recent agent frame the echo gate sat for the last frame (dB).
    package private(set) var echoGateDecibels: Float = 0
    /// Set before each caller frame while the echo's delay is known (an echo canceller
    /// measured it and cancels there): the agent frames, in caller frames ago (0 = the one
    /// played with the current caller frame), the echo in the current frame can come from.
    /// On those frames the gate measures a second loss against the loudest agent frame of that
    /// span only (`echoSpanLoss`) and, once that is measured over `EchoPathEstimator.memoryFrames`
    /// frames with a smaller spread than the whole window's and while `echoSpanTrusted`, gates
    /// against the span rather
    /// than the whole window: during the agent's quieter syllables the gate sinks with them.
    /// nil: the whole window, as without it. A span other than the last one starts the
    /// measurement again.
    package var echoSpanFrames: ClosedRange<Int>? {
        didSet {
            guard let span = echoSpanFrames, span != lastEchoSpan else { return }
            lastEchoSpan = span
            echoSpanLoss = EchoPathEstimator(lags: 1)
        }
    }
    private var lastEchoSpan: ClosedRange<Int>?
    /// Set with `echoSpanFrames`: the delay behind it is confirmed, the gate may use the span
    /// (the loss is measured on the span either way).
    package var echoSpanTrusted = false
    /// The loss from the loudest agent frame of `echoSpanFrames` to what the detector hears.
    package private(set) var echoSpanLoss = EchoPathEstimator(lags: 1)
    /// Set before each caller frame while an echo canceller in front has just started its
    /// filter again and has not converged: the loss (dB) and its spread measured on the raw
    /// line. What the gate learnt of the canceller's output then overstates the loss (its
    /// memory holds the converged filter), so the gate sits no deeper than the raw line's loss
    /// allows (the same rule: less `echoSpreadFactor` spreads and the margin). nil: no bound.
    package var unconvergedLineLoss: (decibels: Float, spread: Float)?
    private var pendingSamples = 0

    /// Speech probability of the last analysed frame (0 when it was gated as echo or silence).
    package private(set) var lastProbability: Float = 0
    /// The statistical detector's probability of the last frame, before the echo gate.
    package private(set) var lastRawProbability: Float = 0
    /// The last analysed frame was rejected as the agent's echo.
    package private(set) var lastFrameWasEcho = false
    /// Analysed frames so far.
    package private(set) var analysedFrames = 0

    package init(configuration: VADConfiguration) {
        self.configuration = configuration
        estimator = SohnSpeechEstimator(frameSamples: configuration.frameSamples)
        hangover = SpeechHangover(configuration: configuration)
        echoPowers = [Float](repeating: 0, count: max(1, configuration.echoWindowFrames))
    }

    /// The caller is speaking (a confirmed segment is open).
    package var speaking: Bool { hangover.confirmed }

    /// While speaking: analysis frames since the utterance began, the pre-speech pad included
    /// (`VAD_PRE_SPEECH_PAD_FRAMES`); 0 otherwise.
    package var onsetFramesAgo: Int {
        hangover.confirmed ? hangover.framesSinceOnset + configuration.preSpeechPadFrames : 0
    }

    /// One frame the agent played to the caller (the echo reference).
    package mutating func agentPlayed(_ samples: UnsafeBufferPointer<Int16>) {
        guard !samples.isEmpty else { return }
        let power = Self.meanSquare(samples)
        let slot = echoSlot
        echoPowers.withUnsafeMutableBufferPointer { powers in
            powers[slot] = max(powers[slot], power)
        }
    }

    /// One caller frame. Returns a change of `speaking`, if this frame made one (when a frame
    /// holds several analysis frames, only the net change is reported).
    package mutating func callerFrame(_ samples: UnsafeBufferPointer<Int16>) -> VoiceActivity? {
        let wasSpeaking = hangover.confirmed
        var echoReference: Float = 0
        var spanReference: Float = -1
        let slot = echoSlot
        echoPowers.withUnsafeBufferPointer { powers in
            for power in powers { echoReference = max(echoReference, power) }
            guard let span = echoSpanFrames, span.lowerBound >= 0, span.lowerBound < powers.count else { return }
            spanReference = 0
            for ago in span.lowerBound...min(span.upperBound, powers.count - 1) {
                spanReference = max(spanReference, powers[(slot - ago + powers.count) % powers.count])
            }
        }
        let frameSamples = configuration.frameSamples
        for sample in samples {
            estimator.push(sample)
            pendingSamples += 1
            if pendingSamples >= frameSamples {
                pendingSamples = 0
                analyse(echoReference: echoReference, spanReference: spanReference)
            }
        }
        // The echo window advances with the caller's clock: one slot per caller frame.
        echoSlot = (echoSlot + 1) % echoPowers.count
        let next = echoSlot
        echoPowers.withUnsafeMutableBufferPointer { $0[next] = 0 }
        switch (wasSpeaking, hangover.confirmed) {
        case (false, true): return .speechStarted
        case (true, false): return .speechEnded
        default: return nil
        }
    }

    private mutating func analyse(echoReference: Float, spanReference: Float) {
        analysedFrames &+= 1
        let raw = estimator.analyse()
        lastRawProbability = raw
        let useSpan = spanReference >= 0 && echoSpanTrusted && configuration.echoFixedGateDecibels == nil
            && echoSpanLoss.measuredFrames >= EchoPathEstimator.memoryFrames
            && (echoSpanLoss.lossSpreadDecibels ?? .infinity) < (echoLoss.lossSpreadDecibels ?? 0)
        var gate = useSpan ? gateDecibels(echoSpanLoss) : gateDecibels(echoLoss)
        if let line = unconvergedLineLoss, configuration.echoFixedGateDecibels == nil {
            gate = min(gate, max(line.decibels - configuration.echoSpreadFactor * line.spread - configuration.echoMarginDecibels, 0))
        }
        echoGateDecibels = gate
        let echoGain = VADMath.exp(-gate / 10 * 2.302_585)
        lastFrameWasEcho = raw > 0 && estimator.bandPower <= (useSpan ? spanReference : echoReference) * echoGain
        echoLoss.frame(agentPower: echoReference, callerPower: estimator.bandPower)
        if spanReference >= 0 { echoSpanLoss.frame(agentPower: spanReference, callerPower: estimator.bandPower) }
        lastProbability = lastFrameWasEcho ? 0 : raw
        _ = hangover.step(probability: lastProbability)
    }

    /// The gate's depth under the loudest recent agent frame: the mean loss measured less
    /// `echoSpreadFactor` standard deviations and the margin, within 0…`echoGateLimitDecibels`.
    private func gateDecibels(_ echoLoss: EchoPathEstimator) -> Float {
        if let fixed = configuration.echoFixedGateDecibels { return fixed }
        guard let loss = echoLoss.lossDecibels, let spread = echoLoss.lossSpreadDecibels else {
            return max(configuration.echoUnmeasuredLossDecibels - configuration.echoMarginDecibels, 0)
        }
        return min(max(loss - configuration.echoSpreadFactor * spread - configuration.echoMarginDecibels, 0),
                   configuration.echoGateLimitDecibels)
    }

    /// Mean square with the frame's DC removed.
    @inline(__always)
    package static func meanSquare(_ samples: UnsafeBufferPointer<Int16>) -> Float {
        var sum: Float = 0, sumSquares: Float = 0
        for sample in samples {
            let value = Float(sample)
            sum += value
            sumSquares += value * value
        }
        let count = Float(samples.count)
        let mean = sum / count
        return max(sumSquares / count - mean * mean, 0)
    }
}
