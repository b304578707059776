import Logging
import AVRProtocol

/// What a call's quality line reports when it ends (times are monotonic nanoseconds).
struct CallQuality {
    /// When the UUID arrived (0 until then).
    var startedAt: UInt64 = 0
    /// When the STS leg started connecting (nil for the built-in echo).
    var legStartedAt: UInt64?
    /// DNS + TCP + handshake of the STS leg (pipeline: of the ASR stream).
    var stsConnect: UInt64?
    /// What `stsConnect` measured, the quality line's `<leg>_connect_ms`: `sts`, or `asr` in
    /// pipeline mode, where no STS connection is made and the leg is the ASR stream's.
    var leg = "sts"
    /// From `startedAt` to the agent's first audio.
    var firstAudio: UInt64?
    var codec = "none"
    var framesIn = 0
    var framesOut = 0
    var largestQueueSamples = 0

    /// The quality line's fields: `duration_ms`, `end_reason`, `codec`, `frames_in`,
    /// `frames_out`, `frames_dropped`, `max_queue_ms`, and, when they happened,
    /// `sts_connect_ms` (pipeline: `asr_connect_ms`) and `first_audio_ms`.
    func fields(duration: UInt64, reason: String, framesDropped: Int) -> Logging.Logger.Metadata {
        var fields: Logging.Logger.Metadata = [
            "duration_ms": .stringConvertible(Int(duration / 1_000_000)),
            "end_reason": .string(reason),
            "codec": .string(codec),
            "frames_in": .stringConvertible(framesIn),
            "frames_out": .stringConvertible(framesOut),
            "frames_dropped": .stringConvertible(framesDropped),
            "max_queue_ms": .stringConvertible(largestQueueSamples / 8),
        ]
        if let stsConnect { fields["\(leg)_connect_ms"] = .stringConvertible(Int(stsConnect / 1_000_000)) }
        if let firstAudio { fields["first_audio_ms"] = .stringConvertible(Int(firstAudio / 1_000_000)) }
        return fields
    }
}

extension CallQuality {
    /// What the call's playout did, added to the quality line: `playout_added_max_ms` (the most
    /// delay its silence added while the agent's speech was late), `playout_paid_back_ms`
    /// (silence skipped to take that back), `playout_stalls`, `playout_prompt_frames` (frames
    /// sent on arrival rather than at a tick) and `playout_short_frames` (tails sent unpadded).
    static func addPlayout(_ playout: PlayoutController, to fields: inout Logging.Logger.Metadata) {
        fields["playout_added_max_ms"] = .stringConvertible(playout.maximumAddedDelaySamples / 8)
        fields["playout_paid_back_ms"] = .stringConvertible(playout.paidBackSamples / 8)
        fields["playout_stalls"] = .stringConvertible(playout.stalls)
        fields["playout_prompt_frames"] = .stringConvertible(playout.promptFrames)
        fields["playout_short_frames"] = .stringConvertible(playout.shortFrames)
        fields["playout_catch_up_frames"] = .stringConvertible(playout.catchUpFrames)
    }
}
