import AVRProtocol

/// The three HTTP modules of the pipeline.
enum PipelineModule: Sendable, CustomStringConvertible {
    case asr, llm, tts

    var description: String {
        switch self {
        case .asr: "ASR"
        case .llm: "LLM"
        case .tts: "TTS"
        }
    }
}

/// Why a module request ended without a complete 2xx response. Worded only where a log
/// line is written (`description`).
enum ModuleFailure: Error, CustomStringConvertible {
    /// The request failed as any outbound request may: connect, TLS, no head within the
    /// request timeout, a body silent for longer, a closed or broken connection, bytes that
    /// are no HTTP response.
    case request(HTTPRequestFailure)
    /// A non-2xx status, with the start of its body (bounded).
    case status(Int, body: [UInt8])
    /// The module wrote an error into a 2xx stream (its words, one line).
    case reportedError(String)

    var description: String {
        switch self {
        case .request(.invalidResponse): "malformed HTTP response"
        case .request(.closedBeforeResponse), .request(.closedMidResponse):
            "connection closed before the response was complete"
        case .request(let failure): "\(failure)"
        case .status(let status, let body): ModuleErrorBody.describe(status: status, body: body)
        case .reportedError(let message): "reported an error: \(message)"
        }
    }
}

/// A pipeline failure: which module, and why.
struct PipelineFailure: Error, CustomStringConvertible {
    let module: PipelineModule
    let failure: ModuleFailure

    var description: String { "\(module): \(failure)" }
}

/// One HTTP request to a pipeline module, on its own connection: an `HTTPRequestTask` (plain
/// or TLS) carrying a `POST` with a fixed body (LLM, TTS) or a chunked body streamed by the
/// caller (ASR), `X-UUID` on every request; the response body is handed out as it arrives.
///
/// With a fixed body, `timeout` bounds the connect, the wait for the response head, and
/// every silence within the response body; a streaming request bounds the connect only (an
/// ASR stream is quiet while the caller is). `cancel()` closes the connection at once and
/// no callback follows. Otherwise `onEnd` runs exactly once: nil for a complete 2xx
/// response, or the failure; a non-2xx response's body is collected (up to
/// `maximumErrorBody` bytes, its wait bounded by `timeout`) into the failure.
final class ModuleRequest {
    enum Body {
        case fixed([UInt8])
        case streaming
    }

    static let maximumErrorBody = 4096
    /// Streaming body bytes the connection may hold unsent before chunks are dropped.
    static let maximumPendingBytes = 256 * 1024

    /// Connected, request head (and fixed body) written: a streaming body may now be sent.
    var onOpen: (() -> Void)?
    /// A 2xx response head arrived.
    var onHead: (() -> Void)?
    var onBody: ((UnsafeRawBufferPointer) -> Void)?
    var onEnd: ((ModuleFailure?) -> Void)?

    private let url: EndpointURL
    private let uuid: String
    private let contentType: String
    private var body: Body?
    private let tls: TLSClient?
    private let timeout: UInt64
    private let task: HTTPRequestTask
    private var errorStatus: Int?
    private var errorBody: [UInt8] = []

    init(loop: EventLoop, url: EndpointURL, uuid: String, contentType: String, body: Body,
         tls: TLSClient?, timeoutMilliseconds: UInt64) {
        self.url = url
        self.uuid = uuid
        self.contentType = contentType
        self.body = body
        self.tls = tls
        timeout = max(1, timeoutMilliseconds)
        let fixed = if case .fixed = body { true } else { false }
        task = HTTPRequestTask(loop: loop, limits: .init(headTimeout: fixed ? timeout : nil,
                                                         responseIdleTimeout: fixed ? timeout : nil,
                                                         maxPendingBytes: Self.maximumPendingBytes))
    }

    var isOpen: Bool { task.isOpen }
    var droppedChunks: Int { task.droppedParts }

    func start() {
        guard let body else { return }
        self.body = nil
        var headers: [(name: String, value: String)] = [("User-Agent", "avr-core"), ("Content-Type", contentType),
                                                        ("X-UUID", uuid)]
        let taskBody: HTTPRequestTask.Body
        switch body {
        case .fixed(let bytes):
            headers.append(("Connection", "close"))
            taskBody = .fixed(bytes)
        case .streaming:
            taskBody = .streaming
        }
        task.onOpen = { [weak self] in self?.onOpen?() }
        task.onHead = { [weak self] in self?.receivedHead() }
        task.onBody = { [weak self] bytes in self?.receivedBody(bytes) ?? false }
        task.onEnd = { [weak self] result in self?.ended(result) }
        task.start(host: url.host, port: url.port, tls: tls, usesTLS: url.scheme.usesTLS, timeout: timeout,
                   head: .init(target: url.requestTarget, host: url.hostHeader, headers: headers), body: taskBody)
    }

    /// One chunk of a streaming body; dropped (and counted) while the module does not read.
    func send(_ bytes: UnsafeRawBufferPointer) {
        task.send(bytes)
    }

    /// Ends a streaming body (the last chunk) and closes once it is written: for a call that
    /// is over. No callback follows.
    func finishAndClose() {
        clearCallbacks()
        task.finishAndClose()
    }

    /// Closes the connection now (the module sees it close); no callback follows.
    func cancel() {
        clearCallbacks()
        task.cancel()
    }

    private func clearCallbacks() {
        onOpen = nil
        onHead = nil
        onBody = nil
        onEnd = nil
    }

    // MARK: Response

    private func receivedHead() {
        let status = task.parser.status
        if (200..<300).contains(status) { return onHead?() ?? () }
        errorStatus = status
        // A streaming request has no bound on its body: the error body's wait is bounded all the same.
        task.boundResponseIdle(timeout)
    }

    private func receivedBody(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard let status = errorStatus else {
            onBody?(bytes)
            return true
        }
        let room = Self.maximumErrorBody - errorBody.count
        errorBody.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[..<min(room, bytes.count)]))
        if errorBody.count >= Self.maximumErrorBody { finish(.status(status, body: errorBody)) }
        return true
    }

    private func ended(_ result: Result<ClientStream?, HTTPRequestFailure>) {
        // An error body that never ends, or ends badly, still reports the status.
        if let status = errorStatus { return finish(.status(status, body: errorBody)) }
        switch result {
        case .success: finish(nil)
        case .failure(let failure): finish(.request(failure))
        }
    }

    private func finish(_ failure: ModuleFailure?) {
        let onEnd = self.onEnd
        cancel()
        onEnd?(failure)
    }
}

@available(*, unavailable)
extension ModuleRequest: Sendable {}
