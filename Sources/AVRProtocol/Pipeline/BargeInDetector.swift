// STAND-IN (backend branch): the real detector comes from the "vad" branch at merge.
// The contract's API over a trivial energy threshold.

public struct VADConfiguration: Sendable, Equatable {
    /// Mean-square level (of s16 samples) above which a frame counts as speech.
    public var energyThreshold: Int64 = 1_000_000
    /// Consecutive speech frames before `speechStarted`.
    public var minSpeechFrames = 3
    /// Consecutive quiet frames before `speechEnded`.
    public var redemptionFrames = 10

    public init() {}
}

public enum VoiceActivity: Equatable, Sendable { case speechStarted, speechEnded }

/// Caller-side voice activity: fed every 20 ms caller frame and every frame the agent played.
public struct BargeInDetector: Sendable {
    private let configuration: VADConfiguration
    private var loudFrames = 0
    private var quietFrames = 0
    public private(set) var speaking = false

    public init(configuration: VADConfiguration) { self.configuration = configuration }

    public mutating func agentPlayed(_ samples: UnsafeBufferPointer<Int16>) {}

    public mutating func callerFrame(_ samples: UnsafeBufferPointer<Int16>) -> VoiceActivity? {
        guard !samples.isEmpty else { return nil }
        var sum: Int64 = 0
        for sample in samples { sum += Int64(sample) * Int64(sample) }
        let loud = sum / Int64(samples.count) > configuration.energyThreshold
        if loud {
            loudFrames += 1
            quietFrames = 0
            if !speaking && loudFrames >= configuration.minSpeechFrames {
                speaking = true
                return .speechStarted
            }
        } else {
            quietFrames += 1
            loudFrames = 0
            if speaking && quietFrames >= configuration.redemptionFrames {
                speaking = false
                return .speechEnded
            }
        }
        return nil
    }
}
