/// The segment logic of the ecosystem's Silero front end, on per-frame speech probabilities:
/// a frame at or above the positive threshold is speech; `minSpeechFrames` speech frames
/// confirm a segment (`speechStarted`); `redemptionFrames` consecutive frames below the
/// negative threshold end it (`speechEnded`, or silently when it was never confirmed: a
/// misfire). Frames between the thresholds change nothing but the onset clock.
struct SpeechHangover: Sendable, Equatable {
    let positiveThreshold: Float
    let negativeThreshold: Float
    let minSpeechFrames: Int
    let redemptionFrames: Int

    /// A segment is open (a speech frame was seen and it has not ended).
    private(set) var inSegment = false
    /// The open segment was confirmed (`speechStarted` was returned).
    private(set) var confirmed = false
    private(set) var speechFrames = 0
    private(set) var quietFrames = 0
    /// Frames since the segment's first speech frame.
    private(set) var framesSinceOnset = 0

    init(configuration: VADConfiguration) {
        positiveThreshold = configuration.positiveSpeechThreshold
        negativeThreshold = configuration.negativeSpeechThreshold
        minSpeechFrames = max(1, configuration.minSpeechFrames)
        redemptionFrames = max(1, configuration.redemptionFrames)
    }

    mutating func step(probability: Float) -> VoiceActivity? {
        if inSegment { framesSinceOnset &+= 1 }
        if probability >= positiveThreshold {
            quietFrames = 0
            if !inSegment {
                inSegment = true
                speechFrames = 0
                framesSinceOnset = 0
            }
            speechFrames &+= 1
            if !confirmed, speechFrames >= minSpeechFrames {
                confirmed = true
                return .speechStarted
            }
        } else if inSegment, probability < negativeThreshold {
            quietFrames += 1
            if quietFrames >= redemptionFrames {
                let wasConfirmed = confirmed
                inSegment = false
                confirmed = false
                speechFrames = 0
                quietFrames = 0
                framesSinceOnset = 0
                return wasConfirmed ? .speechEnded : nil
            }
        }
        return nil
    }
}
