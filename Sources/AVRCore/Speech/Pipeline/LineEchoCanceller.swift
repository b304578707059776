import AVRProtocol

/// The agent's echo removed from one pipeline call's caller audio (docs/VAD.md, "Echo
/// cancellation"): the played audio (after pacing, ambient noise included) is the reference,
/// paired with each caller frame by `EchoReference`; an `EchoPathEstimator` on the raw line
/// measures the echo delay and return loss; the speexdsp canceller (`EchoCanceller`) runs with
/// its reference moved by that delay, so an 80 ms filter covers lines of 0–300 ms.
///
/// It runs only while the agent's audio is on the line and for the echo tail after it; other
/// frames pass through untouched. On a line that returns no echo it idles: when, over
/// `judgeFrames` frames it ran on, it took less than `idleBelowDecibels` off the line, the path
/// estimator has found no echo and it has never removed one on this call, it stops and lets the
/// line through; it starts again (from scratch) when the estimator finds an echo, and after
/// `probeAfterFrames` idle frames to look again. Every buffer is allocated in `init`.
final class LineEchoCanceller {
    static let frameSamples = 160
    /// The filter: 80 ms, four frames from one before the measured delay.
    static let filterSamples = 640
    /// Candidate delays of the estimator: 0–300 ms.
    static let delayLags = 16
    /// Frames after the last audible agent frame during which the canceller still runs.
    static let tailFrames = delayLags + 4

    private let canceller: EchoCanceller
    private var reference: EchoReference
    /// The path as measured on the raw line (delay, ERL).
    private(set) var path = EchoPathEstimator(lags: LineEchoCanceller.delayLags)
    /// Reference frames paired with the last `history` caller frames, frame `k` at
    /// `k * frameSamples`.
    private let history: UnsafeMutableBufferPointer<Int16>
    private let historyFrames = LineEchoCanceller.delayLags + 1
    private var historyHead = 0
    private let output: UnsafeMutableBufferPointer<Int16>
    /// The reference is taken this many frames back (the measured delay less one).
    private(set) var bulkDelayFrames = 0
    private var activeFramesLeft = 0
    /// Consecutive frames the measured delay was out of the filter's reach.
    private var outOfReachFrames = 0
    /// Frames the delay must stay out of reach before the reference moves (after the first
    /// measurement, which is followed at once).
    static let moveAfterFrames = 25
    /// A move of the reference by at most this many frames (the filter's span less one) keeps
    /// the filter: the echo moved in the reference's stream (the reference and the line slipped
    /// by a frame, or the line's buffer grew), and moving the reference with it puts the echo
    /// back where the filter has learnt it. A longer move is a line the filter never saw.
    static let realignWithinFrames = 3
    /// The filter's block that must hold this share of its energy for the filter to count as
    /// having the echo there.
    static let learntBlockShare: Float = 0.5
    /// Echo removed (over loud agent frames, see `watchRemoval`) for the filter to count as
    /// working, within the last `workingWithinFrames` frames (what it removes collapses as
    /// soon as the echo moves, before the path estimator sees the move): its learnt echo is
    /// worth keeping, and a reset of it is told to the gate.
    static let workingDecibels: Float = 6
    static let workingWithinFrames = 150
    /// The last frame (`frames`) on which the filter removed `workingDecibels`.
    private var lastWorkingFrame: Int?
    private var working: Bool { lastWorkingFrame.map { frames - $0 <= Self.workingWithinFrames } ?? false }
    /// Frames a longer move must stay out of reach before the reference moves and the filter
    /// starts again (a far flicker of the estimate must not cost the convergence).
    static let resetAfterFrames = 50
    /// The filter read back (`EchoCanceller.dominantBlock`).
    private let impulse: UnsafeMutableBufferPointer<Int32>
    /// Times the reference moved keeping the filter, and times the filter started again (for
    /// logs and tests).
    private(set) var realignments = 0
    private(set) var resets = 0
    /// After the filter of a call that had placed the reference started again (not after
    /// waking from idle: the gate then learnt the raw line): the filter is
    /// not converged (it removes less than `convergedDecibels` over the loud agent frames since),
    /// so what the gate behind it learnt of the line overstates the loss; see `process`.
    private(set) var converging = false
    /// Echo removed over loud agent frames (exponentially averaged over about
    /// `removalMemoryFrames`) for the filter to count as converged again.
    static let convergedDecibels: Float = 10
    static let removalMemoryFrames: Float = 25
    /// Loud agent frames after which a filter counts as converged whatever it removes (a line
    /// a linear filter cannot cancel much of: the gate has measured that by then).
    static let convergenceGiveUpFrames = 250
    /// Loud agent frames cancelled since the filter last started, and the caller's power in
    /// and out over them (exponentially averaged).
    private var removalFrames = 0
    private var removalIn: Float = 0
    private var removalOut: Float = 0
    /// What the filter removes of the line over loud agent frames, in dB (0 until
    /// `removalMemoryFrames` were measured since it started).
    var removedDecibels: Float {
        guard removalFrames >= Int(Self.removalMemoryFrames) else { return 0 }
        return EchoPathEstimator.decibels(power: removalIn) - EchoPathEstimator.decibels(power: removalOut)
    }
    /// The reference was placed by a measurement once.
    private var followed = false
    /// Once the reference was placed by a measurement: the agent frames (in caller frames
    /// ago) whose echo the current caller frame can hold, the filter's four frames from the
    /// reference and one more for the detector's 32 ms analysis window (for
    /// `BargeInDetector.echoSpanFrames`); nil before.
    private(set) var echoSpanFrames: ClosedRange<Int>?
    /// The path estimator has found the echo within the filter's span on `spanAfterFrames`
    /// frames more than out of it (the estimate flickers; a move of the reference starts the
    /// count again): the detector may gate by `echoSpanFrames` (`BargeInDetector.echoSpanTrusted`).
    private(set) var echoSpanTrusted = false
    static let spanAfterFrames = 10
    private var spanScore = 0
    /// Caller frames the canceller ran on, and all caller frames (for the log).
    private(set) var cancelledFrames = 0
    private(set) var frames = 0

    /// Frames over which the canceller's effect is judged (2 s).
    static let judgeFrames = 100
    /// Less than this taken off the line over `judgeFrames`: nothing to cancel.
    static let idleBelowDecibels: Float = 1
    /// More than this taken off over `judgeFrames`: an echo was removed; never idle again.
    static let removedEchoDecibels: Float = 6
    /// Loud agent frames the path estimator must have measured without finding an echo
    /// before the canceller may idle: 2 s of continuous agent audio, about 4.5 s of speech.
    static let idleAfterMeasuredFrames = 100
    /// Consecutive idle frames on which the estimator must find an echo to wake the canceller
    /// (a flicker of the estimate must not restart the filter).
    static let wakeAfterFoundFrames = 25
    /// Idle frames (agent audio on the line) after which the canceller looks again (10 s).
    static let probeAfterFrames = 500
    /// Idling: frames pass through.
    private(set) var idle = false
    /// An echo was removed on this call (the canceller never idles then).
    private(set) var removedEcho = false
    private var judgedFrames = 0
    private var judgedIn: Float = 0
    private var judgedOut: Float = 0
    private var idleFrames = 0
    private var foundWhileIdle = 0
    /// Times the canceller went idle (for the log).
    private(set) var idlePeriods = 0

    init() {
        canceller = EchoCanceller(frameSamples: Self.frameSamples, filterSamples: Self.filterSamples)
        reference = EchoReference(capacitySamples: 8192, slackSamples: 3 * Self.frameSamples)
        history = .allocate(capacity: historyFrames * Self.frameSamples)
        history.initialize(repeating: 0)
        output = .allocate(capacity: Self.frameSamples)
        output.initialize(repeating: 0)
        impulse = .allocate(capacity: canceller.impulseSamples)
        impulse.initialize(repeating: 0)
    }

    deinit {
        history.deallocate()
        output.deallocate()
        impulse.deallocate()
    }

    /// Audio that went out to the caller (every frame, silence included).
    func played(_ samples: UnsafeBufferPointer<Int16>) {
        reference.played(samples)
    }

    /// Nothing went out for `samples` samples (a hole in the played audio): the line played
    /// silence, and so does the reference.
    func lineSilent(samples: Int) {
        reference.silence(samples)
    }

    /// One caller frame of `frameSamples`: the frame with the echo removed (valid until the next
    /// call), or the frame itself when no agent audio is on the line.
    func process(_ caller: UnsafeBufferPointer<Int16>) -> UnsafeBufferPointer<Int16> {
        precondition(caller.count == Self.frameSamples)
        frames &+= 1
        let size = Self.frameSamples
        historyHead = (historyHead + 1) % historyFrames
        let current = UnsafeMutableBufferPointer(rebasing: history[historyHead * size..<(historyHead + 1) * size])
        reference.next(into: current, delaySamples: 0)
        let agentPower = BargeInDetector.meanSquare(UnsafeBufferPointer(current))
        let callerPower = BargeInDetector.meanSquare(caller)
        path.frame(agentPower: agentPower, callerPower: callerPower)
        let echoFound = path.echoFound
        if echoFound, let loss = path.lossDecibels, let spread = path.lossSpreadDecibels { lineLoss = (loss, spread) }
        if echoFound { follow(path.delayFrames) }
        if echoFound, let delay = path.delayFrames {
            // Within the filter's four frames (its last one included: the filter may hold the
            // echo there, see `follow`).
            let inReach = delay >= bulkDelayFrames && delay <= bulkDelayFrames + 3
            spanScore = inReach ? min(spanScore + 1, 2 * Self.spanAfterFrames) : max(spanScore - 1, 0)
        }
        echoSpanFrames = followed ? bulkDelayFrames...bulkDelayFrames + 4 : nil
        echoSpanTrusted = spanScore >= Self.spanAfterFrames
        if EchoPathEstimator.decibels(power: agentPower) >= EchoPathEstimator.audibleAgentDecibels {
            activeFramesLeft = Self.tailFrames
        } else if activeFramesLeft > 0 {
            activeFramesLeft -= 1
        }
        guard activeFramesLeft > 0 else { return caller }
        if idle {
            idleFrames += 1
            foundWhileIdle = echoFound ? foundWhileIdle + 1 : 0
            guard foundWhileIdle >= Self.wakeAfterFoundFrames || idleFrames >= Self.probeAfterFrames else {
                return caller
            }
            wake()
        }
        let slot = (historyHead - bulkDelayFrames + historyFrames) % historyFrames
        canceller.cancel(caller: caller.baseAddress!, reference: history.baseAddress! + slot * size,
                         into: output.baseAddress!)
        cancelledFrames &+= 1
        watchRemoval(agentPower: agentPower, callerPower: callerPower)
        if !removedEcho { judge(callerPower: callerPower, echoFound: echoFound) }
        return UnsafeBufferPointer(output)
    }

    /// Adds the frame just cancelled to the running judgement of what the canceller takes off
    /// the line; at the end of each `judgeFrames` window, idles or marks the line as echoing.
    private func judge(callerPower: Float, echoFound: Bool) {
        judgedIn += callerPower
        judgedOut += BargeInDetector.meanSquare(UnsafeBufferPointer(output))
        judgedFrames += 1
        guard judgedFrames >= Self.judgeFrames else { return }
        let removed = EchoPathEstimator.decibels(power: judgedIn) - EchoPathEstimator.decibels(power: judgedOut)
        judgedFrames = 0
        judgedIn = 0
        judgedOut = 0
        if removed > Self.removedEchoDecibels {
            removedEcho = true
        } else if removed < Self.idleBelowDecibels && !echoFound
                    && path.measuredFrames >= Self.idleAfterMeasuredFrames {
            idle = true
            idleFrames = 0
            idlePeriods &+= 1
        }
    }

    /// What the filter removes, averaged over the loud agent frames (at least −35 dBFS: where
    /// its echo stands clearest above the caller's noise); after a reset, whether it removes
    /// `convergedDecibels` again.
    private func watchRemoval(agentPower: Float, callerPower: Float) {
        guard EchoPathEstimator.decibels(power: agentPower) >= EchoPathEstimator.audibleAgentDecibels + 20 else { return }
        let weight = 1 / Self.removalMemoryFrames
        removalIn += weight * (callerPower - removalIn)
        removalOut += weight * (BargeInDetector.meanSquare(UnsafeBufferPointer(output)) - removalOut)
        removalFrames += 1
        if removedDecibels >= Self.workingDecibels { lastWorkingFrame = frames }
        if converging && (removalFrames >= Self.convergenceGiveUpFrames || removedDecibels >= Self.convergedDecibels) {
            converging = false
        }
    }

    /// Starts the filter again; `distrust`: the gate behind must not trust what it learnt of
    /// the line until the filter has converged (`converging`).
    private func resetFilter(distrust: Bool) {
        canceller.reset()
        resets &+= 1
        removalFrames = 0
        removalIn = 0
        removalOut = 0
        lastWorkingFrame = nil
        converging = distrust
    }

    /// The filter is not removing the echo as the gate behind it learnt: `converging` after a
    /// reset, or, while the measured delay is out of the filter's reach, a filter that was
    /// working removes less than `workingDecibels` (the echo moved away from it; the caller
    /// talking does not move the measured delay).
    var distrusted: Bool {
        converging || (outOfReachFrames > 0 && lastWorkingFrame != nil && removedDecibels < Self.workingDecibels)
    }

    /// The raw line's loss and its spread as last measured with the echo found (the most
    /// the gate may assume the echo is down) while `distrusted`; nil otherwise or before.
    var unconvergedLineLoss: (decibels: Float, spread: Float)? {
        distrusted ? lineLoss : nil
    }
    private var lineLoss: (decibels: Float, spread: Float)?

    /// Leaves idling: the filter starts again (its history of the reference has a gap).
    private func wake() {
        idle = false
        idleFrames = 0
        foundWhileIdle = 0
        judgedFrames = 0
        judgedIn = 0
        judgedOut = 0
        // Idle, the gate learnt the raw line: nothing to distrust.
        resetFilter(distrust: false)
    }

    /// Moves the reference when the measured delay has left the filter's reach (the filter
    /// starts at the reference and spans four frames; a delay from the reference to two frames
    /// after it is covered with room for the echo's tail) for `moveAfterFrames` frames in a row.
    ///
    /// The first measurement keeps the filter where it is when the delay is within its span
    /// (it has been learning that echo since the start); otherwise it places the reference a
    /// frame before the delay at once and starts the filter. After that, when the filter is
    /// working (it removed `workingDecibels` within `workingWithinFrames`) and has the echo in
    /// one block (read back from speexdsp), and the new delay less that block is within
    /// `realignWithinFrames` of the reference, the reference moves there and the filter is
    /// kept: the echo then sits where the filter learnt it (the line and the reference slipped
    /// by a frame, or the line's buffer grew), and speexdsp's history of the reference takes
    /// the one discontinuity in its stride; if the filter already followed the echo to its last
    /// block, nothing moves. Otherwise the reference is placed a frame before the delay and the
    /// filter starts again, once the delay stayed out of reach `resetAfterFrames` in a row, and
    /// the gate is told (`converging`). A flickering estimate must cause neither.
    private func follow(_ delay: Int?) {
        guard let delay, delay < bulkDelayFrames || delay > bulkDelayFrames + 2,
              max(delay - 1, 0) != bulkDelayFrames else {
            outOfReachFrames = 0
            if delay != nil { followed = true }
            return
        }
        outOfReachFrames += 1
        let working = self.working
        if working, !followed || outOfReachFrames == Self.moveAfterFrames,
           let block = canceller.dominantBlock(share: Self.learntBlockShare, scratch: impulse),
           delay - block >= 0, abs(delay - block - bulkDelayFrames) <= Self.realignWithinFrames {
            outOfReachFrames = 0
            followed = true
            if delay - block != bulkDelayFrames {
                bulkDelayFrames = delay - block
                realignments &+= 1
                spanScore = 0
            }
            return
        }
        if !followed && delay - bulkDelayFrames < Self.filterSamples / Self.frameSamples {
            // The first measurement within the filter's span: the filter has been learning
            // that echo since the start; keep it where it is.
            outOfReachFrames = 0
            followed = true
            return
        }
        guard outOfReachFrames >= Self.resetAfterFrames || !followed else { return }
        outOfReachFrames = 0
        bulkDelayFrames = max(delay - 1, 0)
        spanScore = 0
        resetFilter(distrust: followed)
        followed = true
    }
}
