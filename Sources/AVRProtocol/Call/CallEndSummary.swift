/// Why a call ended: the closed set the `call_ended` webhook's `reason`, the quality line's
/// `end_reason` and the `reason` label of `avr_calls_ended_total` share (docs/PROTOCOLS.md,
/// "call_ended"). A receiver may switch on it; a new value is a documented change. The two
/// `sts_*` values keep their names for every backend; `backend` says which one it was.
package enum CallEndReason: String, CaseIterable, Sendable {
    /// Asterisk sent a hangup message (`0x00`): the caller hung up.
    case callerHangup = "caller_hangup"
    /// The AudioSocket connection closed or reset without a hangup message (how Asterisk
    /// usually ends a `Dial(AudioSocket/...)` leg when the caller hangs up).
    case callerClosed = "caller_closed"
    /// Asterisk sent an error message (`0xff`).
    case callerError = "caller_error"
    /// The AudioSocket peer broke the protocol (bytes that are not AudioSocket, a second UUID).
    case protocolError = "protocol_error"
    /// The speech backend ended the call: the STS closed its connection (after its queued
    /// audio was played), or the streaming-HTTP response ended.
    case backendClosed = "sts_closed"
    /// The speech backend failed: could not be reached, refused the handshake, broke its
    /// protocol, stopped answering pings; in pipeline mode, the first ASR stream could not be
    /// opened; or no backend could be made (an unusable STS URL).
    case backendFailed = "sts_failed"
    /// The server ended the call while stopping: a second `SIGTERM`, `SIGINT`, or the end of
    /// `DRAIN_TIMEOUT`.
    case shutdown
}

/// What a call reports when it ends: the `call_ended` webhook's payload and the quality log
/// line are both written from this one value, so they always agree.
package struct CallEndSummary: Sendable, Equatable {
    package var reason: CallEndReason
    /// The speech backend the call talked to (the one in use at its end); nil when none was
    /// made (`null` in the webhook, `none` in the quality line and the metrics).
    package var backend: SpeechBackendKind?
    /// A human-readable account of the reason (`STS failed: connection refused`), for people
    /// reading the event; not a value to switch on.
    package var detail: String
    /// From the call's start (its UUID arriving) to its end.
    package var durationMilliseconds: Int
    /// The caller's audio as detected (`SLIN`, `ULAW`, `ALAW`, `SLIN16` …; `none` before any audio).
    package var codec = "none"
    /// Audio messages received from Asterisk.
    package var framesIn = 0
    /// Audio messages written to Asterisk (agent audio and silence).
    package var framesOut = 0
    /// Playback frames lost: Asterisk not reading, and audio beyond the playback queue limit.
    package var framesDropped = 0
    /// 20 ms frames the server's loop ran too late to play at all (skipped, not sent late).
    package var framesLate = 0
    /// The most agent audio queued for playback at once.
    package var maxQueueMilliseconds = 0
    /// DNS + TCP + handshake of the speech backend's connection; nil when there was none
    /// (the built-in echo) or it never opened.
    package var stsConnectMilliseconds: Int?
    /// What that connection was, the figure's name `<leg>_connect_ms`
    /// (`SpeechBackendKind.connectLeg`): `sts`, or `asr` in pipeline mode (no STS connection
    /// is made; the ASR stream's is measured).
    package var connectLeg = "sts"
    /// From the call's start to the agent's first audio; nil when none came.
    package var firstAudioMilliseconds: Int?
    /// Playout figures (docs/ARCHITECTURE.md, "Playout").
    package var playoutAddedMaxMilliseconds = 0
    package var playoutPaidBackMilliseconds = 0
    package var playoutStalls = 0
    package var playoutPromptFrames = 0
    package var playoutShortFrames = 0
    package var playoutCatchUpFrames = 0

    package init(reason: CallEndReason, backend: SpeechBackendKind?, detail: String, durationMilliseconds: Int) {
        self.reason = reason
        self.backend = backend
        self.detail = detail
        self.durationMilliseconds = durationMilliseconds
    }

    /// Copies the playout figures of the call's `PlayoutController`.
    package mutating func addPlayout(_ playout: PlayoutController) {
        playoutAddedMaxMilliseconds = playout.maximumAddedDelaySamples / 8
        playoutPaidBackMilliseconds = playout.paidBackSamples / 8
        playoutStalls = playout.stalls
        playoutPromptFrames = playout.promptFrames
        playoutShortFrames = playout.shortFrames
        playoutCatchUpFrames = playout.catchUpFrames
    }

    /// One figure of the quality report.
    package enum Figure: Sendable, Equatable {
        case number(Int)
        case text(String)
        /// Did not happen (`sts_connect_ms` of an echo call): absent from the log line,
        /// `null` in the webhook.
        case absent
    }

    /// The per-call quality figures, by the names both the log line and the webhook use,
    /// in the webhook's order.
    package var qualityFigures: [(name: String, value: Figure)] {
        [
            ("codec", .text(codec)),
            ("frames_in", .number(framesIn)),
            ("frames_out", .number(framesOut)),
            ("frames_dropped", .number(framesDropped)),
            ("frames_late", .number(framesLate)),
            ("max_queue_ms", .number(maxQueueMilliseconds)),
            ("\(connectLeg)_connect_ms", stsConnectMilliseconds.map(Figure.number) ?? .absent),
            ("first_audio_ms", firstAudioMilliseconds.map(Figure.number) ?? .absent),
            ("playout_added_max_ms", .number(playoutAddedMaxMilliseconds)),
            ("playout_paid_back_ms", .number(playoutPaidBackMilliseconds)),
            ("playout_stalls", .number(playoutStalls)),
            ("playout_prompt_frames", .number(playoutPromptFrames)),
            ("playout_short_frames", .number(playoutShortFrames)),
            ("playout_catch_up_frames", .number(playoutCatchUpFrames)),
        ]
    }

    /// The `call_ended` payload:
    /// `{"reason":…,"backend":…,"detail":…,"duration_ms":…,"quality":{<qualityFigures>}}`.
    package var webhookPayload: JSONValue {
        var quality = JSONObject()
        for (name, value) in qualityFigures {
            let json: JSONValue = switch value {
            case .number(let number): JSONValue(integer: number)
            case .text(let text): .string(text)
            case .absent: .null
            }
            quality.members.append(JSONMember(key: name, value: json))
        }
        return [
            "reason": .string(reason.rawValue),
            "backend": backend.map { JSONValue.string($0.rawValue) } ?? .null,
            "detail": .string(detail),
            "duration_ms": JSONValue(integer: durationMilliseconds),
            "quality": .object(quality),
        ]
    }
}
