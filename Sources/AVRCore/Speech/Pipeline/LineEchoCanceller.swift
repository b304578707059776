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
    /// The reference was placed by a measurement once.
    private var followed = false
    /// Once the reference was placed by a measurement: the agent frames (in caller frames
    /// ago) whose echo the current caller frame can hold, the filter's four frames from the
    /// reference and one more for the detector's 32 ms analysis window (for
    /// `BargeInDetector.echoSpanFrames`); nil before.
    private(set) var echoSpanFrames: ClosedRange<Int>?
    /// The path estimator has found the echo within the filter's reach on `spanAfterFrames`
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
    }

    deinit {
        history.deallocate()
        output.deallocate()
    }

    /// Audio that went out to the caller (every frame, silence included).
    func played(_ samples: UnsafeBufferPointer<Int16>) {
        reference.played(samples)
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
        if echoFound { follow(path.delayFrames) }
        if echoFound, let delay = path.delayFrames {
            let inReach = delay >= bulkDelayFrames && delay <= bulkDelayFrames + 2
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

    /// Leaves idling: the filter starts again (its history of the reference has a gap).
    private func wake() {
        idle = false
        idleFrames = 0
        foundWhileIdle = 0
        judgedFrames = 0
        judgedIn = 0
        judgedOut = 0
        canceller.reset()
    }

    /// Moves the reference when the measured delay has left the filter's reach (the filter
    /// starts at the reference and spans four frames; a delay from the reference to two frames
    /// after it is covered) for `moveAfterFrames` frames in a row, and starts the filter
    /// again. A reset costs the canceller's convergence, so a flickering estimate must not
    /// cause one.
    private func follow(_ delay: Int?) {
        guard let delay, delay < bulkDelayFrames || delay > bulkDelayFrames + 2,
              max(delay - 1, 0) != bulkDelayFrames else {
            outOfReachFrames = 0
            if delay != nil { followed = true }
            return
        }
        outOfReachFrames += 1
        guard outOfReachFrames >= Self.moveAfterFrames || !followed else { return }
        outOfReachFrames = 0
        followed = true
        bulkDelayFrames = max(delay - 1, 0)
        spanScore = 0
        canceller.reset()
    }
}
