import AVRProtocol

/// The agent's echo removed from one pipeline call's caller audio (docs/VAD.md, "Echo
/// cancellation"): the played audio (after pacing, ambient noise included) is the reference,
/// paired with each caller frame by `EchoReference`; an `EchoPathEstimator` on the raw line
/// measures the echo delay and return loss; the speexdsp canceller (`EchoCanceller`) runs with
/// its reference moved by that delay, so an 80 ms filter covers lines of 0–300 ms.
///
/// It runs only while the agent's audio is on the line and for the echo tail after it; other
/// frames pass through untouched. Every buffer is allocated in `init`.
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
    /// Caller frames the canceller ran on, and all caller frames (for the log).
    private(set) var cancelledFrames = 0
    private(set) var frames = 0

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
        path.frame(agentPower: agentPower, callerPower: BargeInDetector.meanSquare(caller))
        if path.echoFound { follow(path.delayFrames) }
        if EchoPathEstimator.decibels(power: agentPower) >= EchoPathEstimator.audibleAgentDecibels {
            activeFramesLeft = Self.tailFrames
        } else if activeFramesLeft > 0 {
            activeFramesLeft -= 1
        }
        guard activeFramesLeft > 0 else { return caller }
        let slot = (historyHead - bulkDelayFrames + historyFrames) % historyFrames
        canceller.cancel(caller: caller.baseAddress!, reference: history.baseAddress! + slot * size,
                         into: output.baseAddress!)
        cancelledFrames &+= 1
        return UnsafeBufferPointer(output)
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
        canceller.reset()
    }
}
