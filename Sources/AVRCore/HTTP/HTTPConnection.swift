import AVRProtocol

/// One client connection of `HTTPServer`.
///
/// States: reading a request (a request timer runs from its first byte), waiting for the
/// handler (further pipelined bytes are buffered, bounded), idle between requests (an idle
/// timer runs; the read buffer is released so thousands of idle keep-alive connections —
/// one per live call with Asterisk's CURL() — cost little).
final class HTTPConnection {
    private unowned let server: HTTPServer
    private let stream: TCPStream
    private let parser: HTTPRequestParser
    private let timer: Timer?
    /// Received bytes not yet parsed: the tail after a complete request (pipelining).
    private var pending = ByteBuffer()
    private var awaitingResponse = false
    private var draining = false
    private var closing = false
    private var timerIsForRequest = false
    /// Called once the connection is fully closed.
    var onClosed: (() -> Void)?

    init(server: HTTPServer, stream: TCPStream) {
        self.server = server
        self.stream = stream
        parser = HTTPRequestParser(settings: server.settings,
                                   limits: .init(maxHeaderBytes: server.options.maxHeaderBytes,
                                                 maxBodyBytes: server.options.maxBodyBytes))
        timer = try? Timer(loop: server.loop)
    }

    func start() {
        stream.onRead = { [weak self] bytes in self?.received(bytes) }
        stream.onEnd = { [weak self] _ in self?.close() }
        stream.onClose = { [weak self] in
            guard let self else { return }
            self.timer?.close()
            let callback = self.onClosed
            self.onClosed = nil
            callback?()
        }
        armIdleTimer()
        stream.startReading()
    }

    /// Server shutdown: idle connections close now, busy ones after their response.
    func shutdown() {
        if !awaitingResponse && !parser.inMessage { close() } else { closing = true }
    }

    private func received(_ bytes: UnsafeRawBufferPointer) {
        if awaitingResponse || !pending.isEmpty {
            pending.append(bytes)
            // Bound what a pipelining client can park here while we answer.
            if pending.readableBytes > server.options.maxHeaderBytes + server.options.maxBodyBytes {
                stream.stopReading()
            }
            drain()
            return
        }
        // Common case: parse straight from the loop's read buffer, copying nothing.
        draining = true
        let consumed = parse(bytes)
        if consumed < bytes.count {
            pending.append(UnsafeRawBufferPointer(rebasing: bytes[consumed...]))
        }
        draining = false
        drain()
    }

    /// Parses buffered bytes until a request is outstanding or they run out.
    private func drain() {
        guard !draining else { return }
        draining = true
        defer { draining = false }
        while !awaitingResponse && !pending.isEmpty && !stream.isClosing {
            let consumed = pending.withReadableBytes { parse($0) }
            pending.moveReaderIndex(forwardBy: consumed)
        }
        if pending.isEmpty { pending.releaseStorage() }
        if !awaitingResponse && !stream.isClosing { stream.startReading() }
    }

    /// Feeds `bytes` to the parser and acts on the outcome; returns the bytes consumed.
    private func parse(_ bytes: UnsafeRawBufferPointer) -> Int {
        if !timerIsForRequest { armRequestTimer() }
        switch parser.feed(bytes) {
        case .needMore:
            if parser.expectsContinue {
                parser.continueSent()
                stream.write(HTTPResponseHead.serialize(status: 100, contentType: nil, body: [], keepAlive: true))
            }
            if !parser.inMessage { armIdleTimer() }
            return bytes.count
        case .request(let request, let consumed):
            dispatch(request)
            return consumed
        case .failure(let failure):
            respondToFailure(failure)
            return bytes.count
        }
    }

    private func dispatch(_ request: HTTPRequest) {
        awaitingResponse = true
        timer?.stop()
        timerIsForRequest = false
        var answered = false
        server.handler(request) { [weak self] response in
            guard let self, !answered else { return }
            answered = true
            self.send(response, keepAlive: request.keepAlive && !response.closesConnection)
        }
    }

    private func send(_ response: HTTPResponse, keepAlive: Bool) {
        awaitingResponse = false
        guard !stream.isClosing else { return }
        let keep = keepAlive && !closing
        stream.write(response.serialized(keepAlive: keep))
        if !keep {
            stream.stopReading()
            closeAfterFlush()
            return
        }
        armIdleTimer()
        drain()
    }

    private func respondToFailure(_ failure: HTTPRequestParser.Failure) {
        let response: HTTPResponse
        switch failure {
        case .malformed(let reason): response = .error(400, "malformed HTTP request: \(reason)")
        case .headersTooLarge: response = .error(431, "request headers exceed \(server.options.maxHeaderBytes) bytes")
        case .bodyTooLarge: response = .error(413, "request body exceeds \(server.options.maxBodyBytes) bytes")
        }
        server.log.debug("HTTP \(response.status) to \(stream.peerAddress?.description ?? "?"): \(failure)")
        stream.stopReading()
        pending.releaseStorage()
        stream.write(response.serialized(keepAlive: false))
        closeAfterFlush()
    }

    // MARK: Timers

    private func armRequestTimer() {
        timerIsForRequest = true
        timer?.start(timeout: server.options.requestTimeout) { [weak self] in
            guard let self else { return }
            self.server.log.debug("HTTP request timeout from \(self.stream.peerAddress?.description ?? "?")")
            self.stream.stopReading()
            self.stream.write(HTTPResponse.error(408, "request not completed within \(self.server.options.requestTimeout) ms")
                .serialized(keepAlive: false))
            self.closeAfterFlush()
        }
    }

    private func armIdleTimer() {
        timerIsForRequest = false
        timer?.start(timeout: server.options.idleTimeout) { [weak self] in self?.close() }
    }

    private func closeAfterFlush() {
        timer?.stop()
        stream.closeAfterFlush()
    }

    private func close() {
        timer?.stop()
        stream.close()
    }
}
