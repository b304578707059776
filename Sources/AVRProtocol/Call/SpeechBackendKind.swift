/// Which speech backend a call talked to: the `backend` of `call_ended` and of the quality
/// line, and the `backend` label of `avr_calls_ended_total`, `avr_sts_connect_seconds` and
/// `avr_sts_first_audio_seconds` (docs/PROTOCOLS.md, "call_ended"). A closed set, so the
/// metric series are known at start-up; a new backend is a case here.
package enum SpeechBackendKind: String, CaseIterable, Sendable {
    /// An STS over WebSocket (`ws://`, `wss://`).
    case stsWebSocket = "sts-websocket"
    /// An STS over streaming HTTP (`http://`, `https://`).
    case stsHTTP = "sts-http"
    /// The ASR → LLM → TTS pipeline (a failure's detail names the module).
    case pipeline
    /// The built-in echo (no speech service configured).
    case echo

    /// The label of a call that ended before any backend was made (its route was still being
    /// claimed, or its STS URL was unusable).
    package static let noneLabel = "none"

    /// The connection whose set-up the call times from the backend's start to its
    /// `speechOpened` (the quality figure `<leg>_connect_ms` and `avr_sts_connect_seconds`):
    /// `sts` for an STS, `asr` for the pipeline (its first ASR stream); nil when the backend
    /// connects to nothing.
    package var connectLeg: String? {
        switch self {
        case .stsWebSocket, .stsHTTP: "sts"
        case .pipeline: "asr"
        case .echo: nil
        }
    }

    /// How `detail` and the `Call ended` line name the backend when it fails or ends the call
    /// (`STS failed: …`, `Speech pipeline failed: …`).
    package var speaker: String {
        switch self {
        case .stsWebSocket, .stsHTTP: "STS"
        case .pipeline: "Speech pipeline"
        case .echo: "Echo backend"
        }
    }

    /// The start of the error line logged when the backend fails (`STS connection failed: …`).
    package var failureHeading: String {
        switch self {
        case .stsWebSocket, .stsHTTP: "STS connection failed"
        case .pipeline, .echo: speaker + " failed"
        }
    }
}
