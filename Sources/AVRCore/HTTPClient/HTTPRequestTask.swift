import AVRProtocol

/// Why an outbound HTTP request ended without a complete response: one type for every
/// outbound path (webhooks, pipeline modules, the streaming-HTTP STS). Worded only where a
/// log line is written (`description`).
package enum HTTPRequestFailure: Error, CustomStringConvertible {
    /// An `https://` URL, and no TLS client on this loop.
    case tlsUnavailable
    case connect(Connector.Failure)
    /// No response head within this long of the request head.
    case headTimeout(milliseconds: UInt64)
    /// The response body went quiet for this long.
    case responseIdle(milliseconds: UInt64)
    /// The peer took none of the request body for this long while bytes waited unsent.
    case requestStalled(milliseconds: UInt64, pendingBytes: Int)
    /// The peer closed before any byte of a response.
    case closedBeforeResponse
    /// The peer closed in the middle of the response.
    case closedMidResponse
    /// The connection failed (reset, TLS error) before the response was complete.
    case connection(StreamFailure)
    /// Not an HTTP/1.1 response as llhttp reads it, a head over its bound, or a body the
    /// sink refused.
    case invalidResponse(HTTPResponseFailure)

    package var description: String {
        switch self {
        case .tlsUnavailable: "TLS is not available"
        case .connect(let failure): "cannot connect: \(failure)"
        case .headTimeout(let ms): "no response within \(ms) ms"
        case .responseIdle(let ms): "response stalled for \(ms) ms"
        case .requestStalled(let ms, let pending):
            "request body not read for \(ms) ms (\(pending / 1024) KiB unsent)"
        case .closedBeforeResponse: HTTPResponseFailure.closedBeforeResponse.description
        case .closedMidResponse: HTTPResponseFailure.closedMidResponse.description
        case .connection(let failure): "connection failed: \(failure)"
        case .invalidResponse(let reason): "invalid response: \(reason)"
        }
    }
}

/// One outbound HTTP/1.1 request over a `ClientStream` (plain TCP or TLS): its life is
/// `HTTPRequestStateMachine`'s; this class turns stream, parser and timer callbacks into the
/// machine's events and carries out its actions.
///
/// The body is fixed (written with the head, `Content-Length`) or streaming (`send` writes each
/// part as one chunk from one reused buffer; `finishAndClose` writes the last chunk). The
/// response goes to the sink (`onHead`, `onBody`) as it arrives. One timer at most, only when
/// a bound is set; reads and writes only note the time. `start` connects first (within its
/// own timeout); `run` uses a stream already open (a pooled keep-alive connection).
///
/// `onEnd` runs exactly once unless `cancel`/`finishAndClose` came first: success with the
/// stream when the connection may carry another request (handed back: the task lets go of it,
/// callbacks cleared) or nil when it is closed; or the failure (the connection is closed).
final class HTTPRequestTask {
    enum Body {
        case fixed([UInt8])
        case streaming
    }

    struct Head {
        var method = "POST"
        var target: String
        /// The `Host` header value.
        var host: String
        /// Everything but the framing header, which the task adds (`Content-Length` or
        /// `Transfer-Encoding: chunked`).
        var headers: [(name: String, value: String)]
    }

    /// The head (and a fixed body) is written: a streaming body may be sent.
    var onOpen: (() -> Void)?
    /// The response head arrived: `parser.status`, `parser.header(_:)`.
    var onHead: (() -> Void)?
    /// A piece of the response body; false refuses it and fails the request
    /// (`invalidResponse(.bodyTooLarge)`).
    var onBody: ((UnsafeRawBufferPointer) -> Bool)?
    /// A streaming body part was dropped (the peer is not reading): the count so far.
    var onDrop: ((Int) -> Void)?
    var onEnd: ((Result<ClientStream?, HTTPRequestFailure>) -> Void)?
    /// Whether a connection the response leaves reusable is handed back (a pool sets it);
    /// otherwise every connection is closed at the end.
    var handsBackStream = false

    let parser = HTTPResponseParser()
    private let loop: EventLoop
    private var machine: HTTPRequestStateMachine
    private var stream: ClientStream?
    private var connecting = false
    private var timer: Timer?
    private var timerCallback: (() -> Void)?
    /// The chunk being written (streaming body), reused: no allocation per part.
    private var chunk: [UInt8] = []

    init(loop: EventLoop, limits: HTTPRequestStateMachine.Limits) {
        self.loop = loop
        machine = HTTPRequestStateMachine(limits: limits)
    }

    /// Between the head's write and the end: a streaming body may be sent.
    var isOpen: Bool {
        if case .running = machine.state { return true }
        return false
    }

    var droppedParts: Int { machine.dropped }

    /// Connects (`Connector`: plain, or TLS when `tls` is given) within `timeout` ms, then runs.
    func start(host: String, port: Int, tls: TLSClient?, usesTLS: Bool, timeout: UInt64, head: Head, body: Body) {
        guard case .idle = machine.state, !connecting else { return }
        if usesTLS && tls == nil { return failBeforeStart(.tlsUnavailable) }
        connecting = true
        Connector.connect(loop: loop, host: host, port: port, tls: usesTLS ? tls : nil, timeout: timeout) { [weak self] result in
            guard let self, self.connecting else {
                if case .success(let stream) = result { stream.close() }
                return
            }
            self.connecting = false
            switch result {
            case .failure(let failure): self.failBeforeStart(.connect(failure))
            case .success(let stream): self.run(on: stream, head: head, body: body)
            }
        }
    }

    /// Runs on `stream`, connected already; the task owns it from here (until it hands it back).
    func run(on stream: ClientStream, head: Head, body: Body) {
        guard case .idle = machine.state else { return stream.close() }
        self.stream = stream
        parser.reset()
        parser.onHead = { [unowned self] in self.perform(self.machine.responseHead(now: self.loop.milliseconds)) }
        parser.onBody = { [unowned self] bytes in
            guard case .deliverBody = self.machine.responseBody(now: self.loop.milliseconds) else { return true }
            return self.onBody?(bytes) ?? true
        }
        stream.onRead = { [weak self] bytes in self?.received(bytes) }
        stream.onEnd = { [weak self] failure in self?.peerEnded(failure) }
        stream.onDrain = { [weak self] in
            guard let self else { return }
            self.perform(self.machine.drained(now: self.loop.milliseconds))
        }
        stream.startReading()
        var headers = head.headers
        switch body {
        case .fixed(let bytes): headers.append(("Content-Length", String(bytes.count)))
        case .streaming: headers.append(("Transfer-Encoding", "chunked"))
        }
        var out: [UInt8] = []
        if case .fixed(let bytes) = body { out.reserveCapacity(256 + bytes.count) }
        HTTPRequestHead.append(method: head.method, target: head.target, host: head.host, headers: headers, to: &out)
        if case .fixed(let bytes) = body { out.append(contentsOf: bytes) }
        perform(machine.start(body: body.kind, now: loop.milliseconds), written: out)
    }

    /// Bounds each silence of the response body from now on (a streaming request answered
    /// with an error whose body is awaited).
    func boundResponseIdle(_ timeout: UInt64) {
        perform(machine.boundResponseIdle(timeout, now: loop.milliseconds, pendingBytes: stream?.pendingWriteBytes ?? 0))
    }

    // MARK: Streaming body

    /// One part of a streaming body, written as one chunk; dropped (and counted) while more
    /// than the pending-bytes bound waits unsent.
    func send(_ bytes: UnsafeRawBufferPointer) {
        guard let stream else { return }
        switch machine.bodyPart(bytes: bytes.count, pendingBytes: stream.pendingWriteBytes, now: loop.milliseconds) {
        case .writeBodyPart:
            chunk.removeAll(keepingCapacity: true)
            HTTPChunkedEncoding.appendChunk(bytes, to: &chunk)
            stream.write(chunk)
        case .dropBodyPart(let dropped):
            onDrop?(dropped)
        default:
            break
        }
    }

    /// Ends a streaming body (the last chunk); the response is still awaited.
    func endBody() {
        if let stream, case .writeLastChunk = machine.endBody() { stream.write(HTTPChunkedEncoding.lastChunk) }
    }

    /// Ends a streaming body (the last chunk) and closes once it is written, or after
    /// `TCPStream.flushDeadline`: for a conversation that is over. No callback follows.
    func finishAndClose() {
        if let stream, case .writeLastChunk = machine.endBody() {
            stream.write(HTTPChunkedEncoding.lastChunk)
            detach(stream)
            stream.closeAfterFlush()
        }
        cancel()
    }

    /// Closes the connection now (the peer sees it close); no callback follows.
    func cancel() {
        machine.cancel()
        connecting = false
        clearCallbacks()
        teardown(close: true)
    }

    // MARK: Events in

    private func received(_ bytes: UnsafeRawBufferPointer) {
        guard isOpen else { return }
        switch parser.feed(bytes) {
        case .needMore: break
        case .complete: perform(machine.responseComplete(keepAlive: parser.keepAlive))
        case .failure(let reason):
            guard isOpen else { return }
            failureDetail = .invalidResponse(reason)
            perform(machine.responseInvalid())
        }
    }

    private func peerEnded(_ failure: StreamFailure?) {
        guard isOpen else { return }
        let complete = failure == nil && parser.finishAtEOF() == .complete(consumed: 0)
        if let failure { failureDetail = .connection(failure) }
        perform(machine.peerClosed(completeAtEOF: complete, transportError: failure != nil, sawResponseBytes: parser.sawBytes))
    }

    /// What the shell knows of a failure beyond the machine's word for it.
    private var failureDetail: HTTPRequestFailure?

    // MARK: Actions out

    private func perform(_ action: HTTPRequestStateMachine.Action, written: [UInt8] = []) {
        switch action {
        case .none, .writeBodyPart, .dropBodyPart, .writeLastChunk:
            break
        case .writeHead(let checkAfter):
            stream?.write(written)
            if let checkAfter { armTimer(checkAfter) }
            onOpen?()
        case .deliverHead:
            onHead?()
        case .deliverBody:
            break
        case .checkAfter(let delay):
            armTimer(delay)
        case .succeed(let reuse):
            let onEnd = self.onEnd
            clearCallbacks()
            if reuse && handsBackStream, let stream {
                detach(stream)
                teardown(close: false)
                onEnd?(.success(stream))
            } else {
                teardown(close: true)
                onEnd?(.success(nil))
            }
        case .fail(let failure):
            let onEnd = self.onEnd
            clearCallbacks()
            teardown(close: true)
            onEnd?(.failure(detailed(failure)))
        }
    }

    private func detailed(_ failure: HTTPRequestStateMachine.Failure) -> HTTPRequestFailure {
        switch failure {
        case .headTimeout(let ms): .headTimeout(milliseconds: ms)
        case .responseIdle(let ms): .responseIdle(milliseconds: ms)
        case .requestStalled(let ms, let pending): .requestStalled(milliseconds: ms, pendingBytes: pending)
        case .closedBeforeResponse: .closedBeforeResponse
        case .closedMidResponse: .closedMidResponse
        case .connectionFailed, .invalidResponse: failureDetail ?? .invalidResponse(.closedMidResponse)
        }
    }

    private func failBeforeStart(_ failure: HTTPRequestFailure) {
        machine.cancel()
        let onEnd = self.onEnd
        clearCallbacks()
        onEnd?(.failure(failure))
    }

    // MARK: Timer

    private func armTimer(_ delay: UInt64) {
        if timer == nil {
            guard let made = try? Timer(loop: loop) else { return }
            timer = made
            timerCallback = { [weak self] in
                guard let self, let stream = self.stream else { return }
                self.perform(self.machine.check(now: self.loop.milliseconds, pendingBytes: stream.pendingWriteBytes))
            }
        }
        if let timer, let timerCallback { timer.start(timeout: delay, timerCallback) }
    }

    // MARK: Teardown

    private func clearCallbacks() {
        onOpen = nil
        onHead = nil
        onBody = nil
        onDrop = nil
        onEnd = nil
    }

    private func detach(_ stream: ClientStream) {
        stream.onRead = nil
        stream.onEnd = nil
        stream.onDrain = nil
        self.stream = nil
    }

    private func teardown(close: Bool) {
        timer?.close()
        timer = nil
        timerCallback = nil
        if let stream {
            detach(stream)
            if close { stream.close() }
        }
        parser.onHead = nil
        parser.onBody = nil
    }
}

extension HTTPRequestTask.Body {
    var kind: HTTPRequestStateMachine.Body {
        if case .fixed = self { return .fixed }
        return .streaming
    }
}

@available(*, unavailable)
extension HTTPRequestTask: Sendable {}
