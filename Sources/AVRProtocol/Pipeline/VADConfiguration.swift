/// Settings of the caller-side voice-activity detector (`VAD_*` variables). The names are the
/// AVR ecosystem's (which runs Silero); the defaults are derived for the detector built in here
/// (`SohnSpeechEstimator` + `SpeechHangover` + the echo gate of `BargeInDetector`), see
/// docs/VAD.md for the measurements behind each number.
package struct VADConfiguration: Sendable, Equatable {
    /// `VAD_MODEL`: which detector. Only the built-in statistical one exists.
    package enum Model: String, Sendable, Equatable, CaseIterable {
        /// Sohn, Kim & Sung (IEEE SPL 1999): likelihood ratio test on a per-bin Gaussian model.
        case sohn
    }

    /// `VAD_POSITIVE_SPEECH_THRESHOLD`: a frame whose speech probability reaches this counts
    /// as speech (starts or continues a segment).
    package var positiveSpeechThreshold: Float = 0.5
    /// `VAD_NEGATIVE_SPEECH_THRESHOLD`: a frame below this counts towards the segment's end;
    /// frames between the two thresholds keep the current state.
    package var negativeSpeechThreshold: Float = 0.25
    /// `VAD_MIN_SPEECH_FRAMES`: speech frames a segment needs before `speechStarted`.
    package var minSpeechFrames = 3
    /// `VAD_PRE_SPEECH_PAD_FRAMES`: how far before the first speech frame the utterance is
    /// taken to begin (`BargeInDetector.onsetFramesAgo`); it does not delay the decision.
    package var preSpeechPadFrames = 5
    /// `VAD_REDEMPTION_FRAMES`: consecutive non-speech frames that end a segment.
    package var redemptionFrames = 20
    /// `VAD_FRAME_SAMPLES`: samples (8 kHz) per decision; the analysis window is 256 samples.
    package var frameSamples = 160
    /// `VAD_MODEL`.
    package var model = Model.sohn
    /// Echo gate: a caller frame is the agent's echo unless its power is above the loudest
    /// agent frame of the last `echoWindowFrames` frames minus the loss the line was measured
    /// to have (`BargeInDetector.echoLoss`: the echo return loss, plus the canceller's
    /// enhancement where one runs), less `echoSpreadFactor` times its spread (standard deviation) and this margin
    /// (dB), see docs/VAD.md.
    package var echoMarginDecibels: Float = 3
    /// Standard deviations of the measured loss the gate stays above its mean.
    package var echoSpreadFactor: Float = 1.5
    /// The loss the gate assumes before it has measured the line (dB): the worst echo return
    /// loss of a 2-wire hybrid that ITU-T G.168 expects a canceller to handle.
    package var echoUnmeasuredLossDecibels: Float = 6
    /// The gate never reaches further under the loudest agent frame than this (dB).
    package var echoGateLimitDecibels: Float = 50
    /// A fixed gate depth (dB) instead of the measured one: how earlier versions gated (14 dB),
    /// kept for comparisons in the evaluation; nil (the default) measures the line.
    package var echoFixedGateDecibels: Float?
    /// Agent frames (20 ms) the echo gate looks back: 250 ms covers a 200 ms line delay plus
    /// the analysis window.
    package var echoWindowFrames = 13

    /// Accepted range of `frameSamples` (one decision per 10–32 ms).
    package static let frameSampleRange = 80...256

    /// The defaults.
    package init() {}
}

/// A change of the caller's voice activity.
package enum VoiceActivity: Equatable, Sendable {
    case speechStarted
    case speechEnded
}
