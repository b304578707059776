import Logging
import AVRProtocol

/// What a call's quality line reports when it ends (times are monotonic nanoseconds).
struct CallQuality {
    /// When the UUID arrived (0 until then).
    var startedAt: UInt64 = 0
    /// The backend the call talks to (nil until one is made).
    var backend: SpeechBackendKind?
    /// When the backend's connection started (nil for one that connects to nothing).
    var legStartedAt: UInt64?
    /// DNS + TCP + handshake of the backend's connection (pipeline: of the ASR stream).
    var stsConnect: UInt64?
    /// What `stsConnect` measured, the quality line's `<leg>_connect_ms`
    /// (`SpeechBackendKind.connectLeg`): `sts`, or `asr` in pipeline mode.
    var leg = "sts"
    /// From `startedAt` to the agent's first audio.
    var firstAudio: UInt64?
    var codec = "none"
    var framesIn = 0
    var framesOut = 0
    /// 20 ms deadlines the loop ran too late to play (`PlaybackScheduler`, "late" drops).
    var framesLate = 0
    var largestQueueSamples = 0

    /// What the call reports at its end (`CallEndSummary`: the quality line and `call_ended`),
    /// the playout figures still to be added (`CallEndSummary.addPlayout`).
    func summary(duration: UInt64, reason: CallEndReason, detail: String, framesDropped: Int) -> CallEndSummary {
        var summary = CallEndSummary(reason: reason, backend: backend, detail: detail,
                                     durationMilliseconds: Int(duration / 1_000_000))
        summary.codec = codec
        summary.framesIn = framesIn
        summary.framesOut = framesOut
        summary.framesDropped = framesDropped
        summary.framesLate = framesLate
        summary.maxQueueMilliseconds = largestQueueSamples / 8
        summary.stsConnectMilliseconds = stsConnect.map { Int($0 / 1_000_000) }
        summary.connectLeg = leg
        summary.firstAudioMilliseconds = firstAudio.map { Int($0 / 1_000_000) }
        return summary
    }

    /// The quality line's fields: `duration_ms`, `end_reason`, `backend`, then the summary's quality
    /// figures (`codec`, `frames_in`, `frames_out`, `frames_dropped`, `frames_late`, `max_queue_ms`, the
    /// playout figures, and, when they happened, `sts_connect_ms` and `first_audio_ms`).
    static func logFields(_ summary: CallEndSummary) -> Logging.Logger.Metadata {
        var fields: Logging.Logger.Metadata = [
            "duration_ms": .stringConvertible(summary.durationMilliseconds),
            "end_reason": .string(summary.reason.rawValue),
            "backend": .string(summary.backend?.rawValue ?? SpeechBackendKind.noneLabel),
        ]
        for (name, value) in summary.qualityFigures {
            switch value {
            case .number(let number): fields[name] = .stringConvertible(number)
            case .text(let text): fields[name] = .string(text)
            case .absent: break
            }
        }
        return fields
    }
}
