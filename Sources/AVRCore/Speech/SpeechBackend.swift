import AVRProtocol

/// Why a speech backend stopped, or why one request of it failed. Typed all the way to the
/// call, which pairs it with the backend's `SpeechBackendKind` (the `backend` of `call_ended`
/// and the metrics); text is made only where a log line is written. Most cases come from
/// the STS clients and say so; the pipeline's are `pipeline` (which module, why).
enum SpeechFailure: Error, CustomStringConvertible {
    /// The route's `sts_url` (or `STS_URL`) could not be parsed.
    case unusableURL(String, EndpointURLError)
    /// A `wss://` or `https://` URL, and no TLS context could be made at start-up.
    case tlsUnavailable(EndpointURL)
    /// Resolve, connect or TLS handshake failed or timed out.
    case unreachable(EndpointURL, Connector.Failure)
    /// Connected, but no WebSocket handshake answer in time.
    case handshakeTimeout(EndpointURL, milliseconds: UInt64)
    /// The WebSocket handshake answer was refused or malformed.
    case handshakeRejected(EndpointURL, WebSocketHandshakeError)
    /// The service broke RFC 6455 after the handshake.
    case protocolViolation(WebSocketError)
    /// The connection failed (reset, TLS truncation) while open.
    case connectionFailed(StreamFailure)
    /// A streaming-HTTP service answered with a status other than 2xx.
    case httpStatus(EndpointURL, Int)
    /// A streaming-HTTP service sent bytes that are no HTTP response.
    case invalidResponse(HTTPResponseFailure)
    /// The service closed the connection before its WebSocket handshake answer.
    case closedWithoutCloseFrame
    /// A streaming-HTTP service closed before the end of its response.
    case endedMidResponse
    /// A streaming-HTTP service sent no response head in time, or stopped reading the
    /// request body (`STS_HTTP_HEAD_TIMEOUT`, `STS_HTTP_STALL_TIMEOUT`).
    case httpRequest(EndpointURL, HTTPRequestFailure)
    /// The STS reported an error in its own protocol (its words).
    case serviceError(String)
    /// A request of the ASR → LLM → TTS pipeline failed (which module, why).
    case pipeline(PipelineFailure)
    /// The STS WebSocket sent no frame at all (pong or other) within this long after a ping
    /// (`STS_PING_TIMEOUT`): the service or the path to it hangs.
    case noPingAnswer(milliseconds: UInt64)
    /// The STS sent more pings than a keep-alive needs (`WebSocketPingFloodGuard`).
    case pingFlood(maxPerSecond: Int)
    /// A call with several STS endpoints found none it could use: each endpoint tried (as
    /// logs may show it, `EndpointURL.redacted`) with why it failed, in the order tried.
    case noEndpointLeft([(endpoint: String, failure: SpeechFailure)])

    var description: String {
        switch self {
        case .unusableURL(let text, let error): "unusable STS URL \(text): \(error)"
        case .tlsUnavailable(let url): "\(Self.name(url)) \(url): TLS is not available"
        case .unreachable(let url, let failure): "\(Self.name(url)) \(url): \(failure)"
        case .handshakeTimeout(let url, let ms): "no WebSocket handshake answer from \(url) within \(ms) ms"
        case .handshakeRejected(let url, let error): "STS WebSocket \(url): \(error)"
        case .protocolViolation(let error): "STS protocol error: \(error)"
        case .connectionFailed(let failure): "connection failed: \(failure)"
        case .httpStatus(let url, let status): "\(Self.name(url)) \(url) answered HTTP \(status)"
        case .invalidResponse(let failure): "invalid HTTP response: \(failure)"
        case .closedWithoutCloseFrame: "STS closed the connection without a close frame"
        case .endedMidResponse: "STS closed the connection mid-response"
        case .httpRequest(let url, let failure): "\(Self.name(url)) \(url): \(failure)"
        case .serviceError(let message): "STS error: \(message)"
        case .pipeline(let failure): "\(failure)"
        case .noPingAnswer(let ms): "no answer to ping within \(ms) ms"
        case .pingFlood(let max): "ping flood: more than \(max) pings within one second"
        case .noEndpointLeft(let tried):
            "no STS endpoint left (\(tried.count) tried): "
                + tried.map { "\($0.endpoint) (\($0.failure.reasonAlone))" }.joined(separator: "; ")
        }
    }

    /// The description without the URL, for a line that names the endpoint itself (redacted).
    var reasonAlone: String {
        switch self {
        case .unreachable(_, let failure): "\(failure)"
        case .tlsUnavailable: "TLS is not available"
        case .handshakeTimeout(_, let ms): "no WebSocket handshake answer within \(ms) ms"
        case .handshakeRejected(_, let error): "\(error)"
        case .httpStatus(_, let status): "answered HTTP \(status)"
        case .httpRequest(_, let failure): "\(failure)"
        default: description
        }
    }

    private static func name(_ url: EndpointURL) -> String {
        url.scheme.isWebSocket ? "STS WebSocket" : "STS HTTP"
    }
}

/// How a speech backend ended.
enum SpeechCloseReason {
    /// The service ended the conversation in good order: queued audio plays out, then the
    /// call hangs up.
    case finished
    /// The service could not be reached or failed: the call ends now.
    case failed(SpeechFailure)
    /// The STS ended its WebSocket connection without a close frame (the TCP stream just
    /// ended: the process died or was restarted). A call with one endpoint takes it as
    /// `finished`; with several, `STSFailoverBackend` takes it as a loss and fails over.
    case endedWithoutCloseFrame
}

/// What a call hears from its speech backend. All calls come on the call's loop.
protocol SpeechBackendDelegate: AnyObject {
    /// The backend is ready; caller audio is flowing to it.
    func speechOpened()
    /// Agent audio, 8 kHz s16le PCM, valid during the call only: queued for playback.
    func speechAgentAudio(pcm: UnsafeRawBufferPointer)
    /// The same as base64 (an STS audio message), decoded straight into playback in one
    /// pass. Invalid base64 queues nothing and throws.
    func speechAgentAudio(base64: UnsafeRawBufferPointer) throws(Base64Error)
    /// The caller spoke over the agent: playback stops, the queue empties, the
    /// `interruption` webhook fires.
    func speechInterrupted()
    /// Words heard or spoken: logged and sent as the `transcription` webhook.
    func speechTranscript(role: TranscriptRole, text: String)
    /// Something failed that ends nothing (one request, one message): logged.
    func speechError(_ error: SpeechFailure)
    /// The backend is done; no calls follow.
    func speechClosed(_ reason: SpeechCloseReason)
    /// Samples of agent audio still queued for playback.
    var agentQueuedSamples: Int { get }
}

/// One call's speech service: an STS over WebSocket or streaming HTTP, the built-in echo, or
/// the ASR → LLM → TTS pipeline. `SpeechBackendFactory` picks one per call.
protocol SpeechBackend: AnyObject {
    var delegate: SpeechBackendDelegate? { get set }
    /// Which backend this is, as `call_ended`, the quality line and the metrics name it; its
    /// `connectLeg` says whether the call times a connection. Read when the backend is made,
    /// when it opens and when the call ends (a failover call may move between transports).
    var kind: SpeechBackendKind { get }
    /// Whether the caller's audio held while the call's route was being claimed is handed to
    /// the backend when the claim ends (at once, in order). False for a backend that answers
    /// what it hears as it hears it (the echo): a burst of held audio would sit in the
    /// playout queue ahead of everything after it, the claim's length added to every echo.
    var takesHeldAudio: Bool { get }
    func start()
    /// One caller frame of 8 kHz s16le PCM; kept (bounded) while the backend is still opening.
    func sendCallerAudio(_ pcm: UnsafeRawBufferPointer)
    func sendDTMF(_ digit: UInt8)
    /// Each 20 ms frame as it goes out to the caller (the echo reference for barge-in).
    func agentFramePlayed(_ samples: UnsafeBufferPointer<Int16>)
    /// Nothing went out to the caller for `samples` samples (a hole of a frame or more before
    /// the next frame, see `LineTimeline`): the line played silence there.
    func agentLineSilent(samples: Int)
    /// The caller hung up: close politely and release everything; no delegate calls follow.
    func close()
}

extension SpeechBackend {
    var takesHeldAudio: Bool { true }
    func agentFramePlayed(_ samples: UnsafeBufferPointer<Int16>) {}
    func agentLineSilent(samples: Int) {}
}

extension SpeechBackendKind {
    /// The STS client an endpoint's scheme selects.
    init(sts url: EndpointURL) {
        self = url.scheme.isWebSocket ? .stsWebSocket : .stsHTTP
    }
}
