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
    /// An `https://` module URL, and no TLS client on this loop.
    case tlsUnavailable
    case connect(Connector.Failure)
    /// No response head within the request timeout.
    case noResponse(milliseconds: UInt64)
    /// The response body went quiet for longer than the request timeout.
    case stalled(milliseconds: UInt64)
    /// A non-2xx status, with the start of its body (bounded).
    case status(Int, body: [UInt8])
    /// Not HTTP/1.1 as llhttp reads it (or a head over 16 KiB).
    case malformedResponse
    /// The connection failed (reset, TLS error) before the response was complete.
    case connection(StreamFailure)
    /// The module closed the connection before the response was complete.
    case closedEarly
    /// The module wrote an error into a 2xx stream (its words, one line).
    case reportedError(String)

    var description: String {
        switch self {
        case .tlsUnavailable: "TLS is not available"
        case .connect(let failure): "cannot connect: \(failure)"
        case .noResponse(let ms): "no response within \(ms) ms"
        case .stalled(let ms): "response stalled for \(ms) ms"
        case .status(let status, let body): ModuleErrorBody.describe(status: status, body: body)
        case .malformedResponse: "malformed HTTP response"
        case .connection(let failure): "connection failed: \(failure)"
        case .closedEarly: "connection closed before the response was complete"
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

/// One HTTP request to a pipeline module, on its own connection (`Connector`: plain or TLS):
/// a `POST` with a fixed body (LLM, TTS) or a chunked body streamed by the caller (ASR),
/// `X-UUID` on every request; the response body is handed out as it arrives.
///
/// With a fixed body, `timeout` bounds the connect, the wait for the response head, and
/// every silence within the response body; a streaming request bounds the connect only (an
/// ASR stream is quiet while the caller is). `cancel()` closes the connection at once and
/// no callback follows. Otherwise `onEnd` runs exactly once: nil for a complete 2xx
/// response, or the failure; a non-2xx response's body is collected (up to
/// `maximumErrorBody` bytes) into the failure.
final class ModuleRequest {
    enum Body {
        case fixed([UInt8])
        case streaming
    }

    private enum State { case idle, connecting, open, done }

    static let maximumErrorBody = 4096
    /// Streaming body bytes the connection may hold unsent before chunks are dropped.
    static let maximumPendingBytes = 256 * 1024

    /// Connected, request head (and fixed body) written: a streaming body may now be sent.
    var onOpen: (() -> Void)?
    /// A 2xx response head arrived.
    var onHead: (() -> Void)?
    var onBody: ((UnsafeRawBufferPointer) -> Void)?
    var onEnd: ((ModuleFailure?) -> Void)?

    private let loop: EventLoop
    private let url: EndpointURL
    private let uuid: String
    private let contentType: String
    private var body: Body
    private let tls: TLSClient?
    private let timeout: UInt64
    private var state = State.idle
    private var stream: ClientStream?
    private let parser = HTTPResponseParser()
    private var timer: Timer?
    private var timerCallback: (() -> Void)?
    private var lastActivity: UInt64 = 0
    private var headSeen = false
    private var errorStatus: Int?
    private var errorBody: [UInt8] = []
    /// The chunk being written (streaming body), reused: no allocation per chunk.
    private var chunk: [UInt8] = []
    private(set) var droppedChunks = 0

    init(loop: EventLoop, url: EndpointURL, uuid: String, contentType: String, body: Body,
         tls: TLSClient?, timeoutMilliseconds: UInt64) {
        self.loop = loop
        self.url = url
        self.uuid = uuid
        self.contentType = contentType
        self.body = body
        self.tls = tls
        timeout = max(1, timeoutMilliseconds)
    }

    var isOpen: Bool { state == .open }

    func start() {
        guard state == .idle else { return }
        state = .connecting
        if url.scheme.usesTLS && tls == nil { return fail(.tlsUnavailable) }
        Connector.connect(loop: loop, host: url.host, port: url.port, tls: url.scheme.usesTLS ? tls : nil,
                          timeout: timeout) { [weak self] result in
            guard let self, self.state == .connecting else {
                if case .success(let stream) = result { stream.close() }
                return
            }
            switch result {
            case .failure(let failure): self.fail(.connect(failure))
            case .success(let stream): self.opened(stream)
            }
        }
    }

    private func opened(_ stream: ClientStream) {
        self.stream = stream
        state = .open
        parser.onHead = { [weak self] in self?.receivedHead() }
        parser.onBody = { [weak self] bytes in
            guard let self, self.state == .open else { return false }
            self.receivedBody(bytes)
            return true
        }
        stream.onRead = { [weak self] bytes in self?.received(bytes) }
        stream.onEnd = { [weak self] error in self?.ended(error) }
        stream.startReading()
        var head: [UInt8] = []
        var headers: [(name: String, value: String)] = [("User-Agent", "avr-core"), ("Content-Type", contentType)]
        switch body {
        case .fixed(let bytes):
            headers.append(("Content-Length", String(bytes.count)))
            headers.append(("X-UUID", uuid))
            headers.append(("Connection", "close"))
            HTTPRequestHead.append(method: "POST", target: url.requestTarget, host: url.hostHeader, headers: headers, to: &head)
            head.append(contentsOf: bytes)
            body = .fixed([])
            startTimer()
        case .streaming:
            headers.append(("Transfer-Encoding", "chunked"))
            headers.append(("X-UUID", uuid))
            HTTPRequestHead.append(method: "POST", target: url.requestTarget, host: url.hostHeader, headers: headers, to: &head)
        }
        stream.write(head)
        onOpen?()
    }

    // MARK: Streaming body

    /// One chunk of a streaming body; dropped (and counted) while the module does not read.
    func send(_ bytes: UnsafeRawBufferPointer) {
        guard state == .open, let stream, bytes.count > 0 else { return }
        if stream.pendingWriteBytes > Self.maximumPendingBytes {
            droppedChunks += 1
            return
        }
        chunk.removeAll(keepingCapacity: true)
        appendHex(bytes.count)
        chunk.append(13)
        chunk.append(10)
        chunk.append(contentsOf: bytes)
        chunk.append(13)
        chunk.append(10)
        stream.write(chunk)
    }

    private func appendHex(_ value: Int) {
        var shift = (Int.bitWidth - value.leadingZeroBitCount + 3) / 4 * 4
        if shift == 0 { shift = 4 }
        while shift > 0 {
            shift -= 4
            let digit = UInt8((value >> shift) & 0xF)
            chunk.append(digit < 10 ? 48 + digit : 87 + digit)
        }
    }

    /// Ends a streaming body (the last chunk) and closes once it is written: for a call that
    /// is over. No callback follows.
    func finishAndClose() {
        if state == .open, case .streaming = body, let stream {
            stream.write(Array("0\r\n\r\n".utf8))
            stream.onRead = nil
            stream.onEnd = nil
            stream.closeAfterFlush()
            self.stream = nil
        }
        cancel()
    }

    /// Closes the connection now (the module sees it close); no callback follows.
    func cancel() {
        onOpen = nil
        onHead = nil
        onBody = nil
        onEnd = nil
        teardown()
    }

    // MARK: Response

    private func received(_ bytes: UnsafeRawBufferPointer) {
        guard state == .open else { return }
        lastActivity = loop.milliseconds
        switch parser.feed(bytes) {
        case .needMore: break
        case .complete: completed()
        case .failure:
            guard state == .open else { return }
            if errorStatus != nil { return completed() }  // the error body hit its bound
            fail(.malformedResponse)
        }
    }

    private func receivedHead() {
        headSeen = true
        if (200..<300).contains(parser.status) {
            onHead?()
        } else {
            errorStatus = parser.status
            // A streaming request has no timer: the error body's wait is bounded all the same.
            if timer == nil { startTimer() }
        }
    }

    private func receivedBody(_ bytes: UnsafeRawBufferPointer) {
        if errorStatus != nil {
            let room = Self.maximumErrorBody - errorBody.count
            errorBody.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[..<min(room, bytes.count)]))
            if errorBody.count >= Self.maximumErrorBody { completed() }
            return
        }
        onBody?(bytes)
    }

    private func completed() {
        guard state == .open else { return }
        if let status = errorStatus { return fail(.status(status, body: errorBody)) }
        let onEnd = self.onEnd
        cancel()
        onEnd?(nil)
    }

    private func ended(_ error: StreamFailure?) {
        guard state == .open else { return }
        if error == nil, case .complete = parser.finishAtEOF() { return completed() }
        guard state == .open else { return }
        if errorStatus != nil { return completed() }
        fail(error.map(ModuleFailure.connection) ?? .closedEarly)
    }

    private func fail(_ failure: ModuleFailure) {
        guard state != .done else { return }
        let onEnd = self.onEnd
        cancel()
        onEnd?(failure)
    }

    private func teardown() {
        state = .done
        timer?.close()
        timer = nil
        timerCallback = nil
        if let stream {
            stream.onRead = nil
            stream.onEnd = nil
            stream.close()
        }
        stream = nil
        parser.onHead = nil
        parser.onBody = nil
    }

    // MARK: Timeout (fixed-body requests)

    /// One timer for the wait for the head and for each silence in the body: reads only
    /// note the time; the timer re-arms for what is left when it fires early.
    private func startTimer() {
        guard let timer = try? Timer(loop: loop) else { return }
        self.timer = timer
        lastActivity = loop.milliseconds
        let callback: () -> Void = { [weak self] in self?.timerFired() }
        timerCallback = callback
        timer.start(timeout: timeout, callback)
    }

    private func timerFired() {
        guard state == .open, let timer, let timerCallback else { return }
        let idle = loop.milliseconds &- lastActivity
        if idle >= timeout {
            if errorStatus != nil { return completed() }  // an error body that never ends
            return fail(headSeen ? .stalled(milliseconds: timeout) : .noResponse(milliseconds: timeout))
        }
        timer.start(timeout: timeout - idle, timerCallback)
    }
}

@available(*, unavailable)
extension ModuleRequest: Sendable {}
