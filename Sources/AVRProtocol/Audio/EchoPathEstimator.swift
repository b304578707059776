/// Measures the echo path of a line from frame levels: how much quieter the agent's voice comes
/// back on the caller's channel (the echo return loss, ERL) and how late (the echo delay, in
/// whole frames). Pure, the frames are the clock; all state is allocated in `init`.
///
/// Fed one pair per caller frame: the power (mean square) of the agent frame that was on the
/// line at the same time, and the power of the caller frame. For every candidate delay (lag)
/// it keeps a running mean and variance of the level difference caller − agent(t − lag) in dB,
/// over the frames where the delayed agent frame was audible. On the true lag that difference
/// is the line's constant −ERL (the echo follows the agent's level frame by frame); on any
/// other lag it swings with the speech. The lag of least variance is the delay, its mean the
/// ERL. Frames that look like the caller talking (more than `doubleTalkDecibels` and twice the
/// spread above the running mean, after warm-up) are left out, so what is measured is the line
/// while the caller is silent.
///
/// With one lag it measures the loss of a fixed pairing, which the barge-in detector uses on
/// the loudest recent agent frame and what is left after the echo canceller.
package struct EchoPathEstimator: Sendable {
    /// Candidate delays 0..<lags frames.
    package let lags: Int
    /// Recent agent frame levels (dB re full scale), newest at `head`.
    private var agentLevels: [Float]
    private var head = 0
    private var means: [Float]
    private var meanSquares: [Float]
    private var counts: [Int]
    /// Loudest agent level lately (dB), falling 0.1 dB per frame.
    private var agentPeak = Self.floorDecibels
    /// Only agent frames within this many dB of `agentPeak` are measured.
    package let loudRangeDecibels: Float
    /// Frames (of audible agent) the estimate needs before it is reported.
    package static let warmUpFrames = 25
    /// Time constant of the running statistics, in measured agent frames (1 s of loud speech).
    package static let memoryFrames = 50
    /// An agent frame below this level (dBFS) adds no measurable echo.
    package static let audibleAgentDecibels: Float = -55
    /// Nothing is measured below this level (dBFS): digital silence would give an infinite loss.
    package static let floorDecibels: Float = -90
    /// Double talk: a frame this much (or twice the spread, if more) above the running mean is
    /// the caller, not the echo.
    package static let doubleTalkDecibels: Float = 6

    /// `loudRangeDecibels`: measure only agent frames this close to the recent loudest one:
    /// where the echo stands clear of the line noise, and where a gate matters most.
    package init(lags: Int, loudRangeDecibels: Float = 10) {
        self.lags = max(1, lags)
        self.loudRangeDecibels = loudRangeDecibels
        agentLevels = [Float](repeating: Self.floorDecibels, count: self.lags)
        means = [Float](repeating: 0, count: self.lags)
        meanSquares = [Float](repeating: 0, count: self.lags)
        counts = [Int](repeating: 0, count: self.lags)
    }

    /// Level in dB re full scale (32768) of a mean square, floored.
    @inline(__always)
    package static func decibels(power: Float) -> Float {
        guard power > 0 else { return floorDecibels }
        // 10·log10(p / 32768²) = 10/ln10 · ln p − 90.309
        return max(4.342_944_8 * VADMath.ln(power) - 90.308_998, floorDecibels)
    }

    /// One caller frame and the agent frame that was on the line with it (both mean squares).
    package mutating func frame(agentPower: Float, callerPower: Float) {
        head = head == 0 ? lags - 1 : head - 1
        let caller = Self.decibels(power: callerPower)
        let lags = self.lags, head = self.head
        let level = Self.decibels(power: agentPower)
        agentPeak = max(level, agentPeak - 0.1)
        let loudest = max(Self.audibleAgentDecibels, agentPeak - loudRangeDecibels)
        agentLevels.withUnsafeMutableBufferPointer { levels in
            levels[head] = level
            means.withUnsafeMutableBufferPointer { means in
                meanSquares.withUnsafeMutableBufferPointer { squares in
                    counts.withUnsafeMutableBufferPointer { counts in
                        for lag in 0..<lags {
                            let agent = levels[(head + lag) % lags]
                            guard agent >= loudest else { continue }
                            let difference = caller - agent
                            let count = counts[lag]
                            if count >= Self.warmUpFrames {
                                let spread = (max(squares[lag] - means[lag] * means[lag], 0)).squareRoot()
                                if difference > means[lag] + max(Self.doubleTalkDecibels, 2 * spread) { continue }
                            }
                            let weight = 1 / Float(min(count + 1, Self.memoryFrames))
                            means[lag] += weight * (difference - means[lag])
                            squares[lag] += weight * (difference * difference - squares[lag])
                            counts[lag] = count + 1
                        }
                    }
                }
            }
        }
    }

    /// The lag of least variance among the warmed-up ones.
    private var bestLag: Int? {
        var best: Int?
        var bestVariance = Float.infinity
        for lag in 0..<lags where counts[lag] >= Self.warmUpFrames {
            let variance = meanSquares[lag] - means[lag] * means[lag]
            if variance < bestVariance {
                bestVariance = variance
                best = lag
            }
        }
        return best
    }

    /// The echo delay in frames, once measured.
    package var delayFrames: Int? { bestLag }

    /// The best lag stands out: its spread is under half the median lag's, so the caller's
    /// channel follows the agent's level at that delay (an echo above the line noise), rather
    /// than being noise the agent's level does not explain. Always false with one lag.
    package var echoFound: Bool {
        guard lags > 2, let lag = bestLag else { return false }
        let best = meanSquares[lag] - means[lag] * means[lag]
        var measured = 0, wider = 0
        for other in 0..<lags where counts[other] >= Self.warmUpFrames {
            measured += 1
            if meanSquares[other] - means[other] * means[other] > 4 * best { wider += 1 }
        }
        return measured > 2 && 2 * wider >= measured
    }

    /// The echo return loss in dB (positive: the echo is that much quieter), once measured.
    package var lossDecibels: Float? {
        guard let lag = bestLag else { return nil }
        return -means[lag]
    }

    /// The standard deviation of the loss (dB) over the measured frames, once measured.
    package var lossSpreadDecibels: Float? {
        guard let lag = bestLag else { return nil }
        return max(meanSquares[lag] - means[lag] * means[lag], 0).squareRoot()
    }

    /// Audible agent frames measured on the reported lag.
    package var measuredFrames: Int {
        guard let lag = bestLag else { return 0 }
        return counts[lag]
    }
}
