import AVRProtocol

/// One client connection of `HTTPServer`.
///
/// States: reading a request (a request timer runs from its first byte), waiting for the
/// handler (further pipelined bytes are buffered, bounded), idle between requests (an idle
/// timer runs; the read buffer is released so thousands of idle keep-alive connections —
/// one per live call with Asterisk's CURL() — cost little), and lingering: after a response
/// that ends the connection (an early error, or `Connection: close`) the write side is shut
/// down and input is read and discarded, bounded (`LingeringClose`), so a client still
/// sending its body gets to read the response instead of a reset.
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
    /// Set once the last response is written: nothing more is parsed.
    private var ended = false
    /// Set while the connection drains input before it closes.
    private var linger: LingeringClose?
    /// Called once the connection is fully closed.
    var onClosed: (() -> Void)?

    init(server: HTTPServer, stream: TCPStream) {
        self.server = server
        self.stream = stream
        parser = HTTPRequestParser(limits: .init(maxHeaderBytes: server.options.maxHeaderBytes,
                                                 maxBodyBytes: server.options.maxBodyBytes))
        timer = try? Timer(loop: server.loop)
    }

    func start() {
        server.loop.assertOnLoop()
        stream.onRead = { [weak self] bytes in self?.received(bytes) }
        stream.onEnd = { [weak self] _ in
            guard let self else { return }
            if self.linger != nil { self.endLingering(.peerClosed) } else { self.close() }
        }
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

    /// Server shutdown: idle and lingering connections close now, busy ones after their response.
    func shutdown() {
        server.loop.assertOnLoop()
        if linger != nil || (!awaitingResponse && !parser.inMessage) { close() } else { closing = true }
    }

    private func received(_ bytes: UnsafeRawBufferPointer) {
        if ended {
            discard(bytes.count)
            return
        }
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
        draining = false
        if consumed < bytes.count {
            if ended {
                discard(bytes.count - consumed)
            } else {
                pending.append(UnsafeRawBufferPointer(rebasing: bytes[consumed...]))
            }
        }
        drain()
    }

    /// Parses buffered bytes until a request is outstanding or they run out.
    private func drain() {
        guard !draining else { return }
        draining = true
        defer { draining = false }
        while !ended && !awaitingResponse && !pending.isEmpty && !stream.isClosing {
            let consumed = pending.withReadableBytes { parse($0) }
            pending.moveReaderIndex(forwardBy: consumed)
        }
        // Ended: what is left unparsed belongs to a request that will not be answered.
        if pending.isEmpty || ended { pending.releaseStorage() }
        if !ended && !awaitingResponse && !stream.isClosing { stream.startReading() }
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
            // Bytes the client pipelined after this request are never parsed now; lingering
            // keeps them from turning the close into a reset that could destroy the response.
            closeLingering()
            drain()  // releases what was parked (at once, or after the parse this runs in)
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
        // Runs while `pending` may be the bytes being parsed: `drain` releases it afterwards.
        stream.write(response.serialized(keepAlive: false))
        closeLingering()
    }

    // MARK: Lingering close

    /// The response is written: half-close once it is flushed, then discard input until the
    /// client's EOF (`onEnd`), the byte budget, or the idle/total time bound. A stopping
    /// server closes after the flush instead: it must not wait for clients.
    private func closeLingering() {
        guard !ended else { return }
        ended = true
        if closing {
            stream.stopReading()
            closeAfterFlush()
            return
        }
        let state = LingeringClose(bounds: server.options.linger, now: server.loop.milliseconds)
        linger = state
        timerIsForRequest = false
        stream.shutdown { [weak self] error in
            // The peer is gone (or the stream closed first): nothing left to wait for.
            if error != nil { self?.endLingering(.peerClosed) }
        }
        stream.startReading()
        armLingerTimer(state)
    }

    private func discard(_ count: Int) {
        guard var state = linger else { return }
        let ending = state.discarded(count, now: server.loop.milliseconds)
        linger = state
        if let ending { endLingering(ending) }
    }

    private func armLingerTimer(_ state: LingeringClose) {
        timer?.start(timeout: state.timeout(now: server.loop.milliseconds)) { [weak self] in
            guard let self, let state = self.linger else { return }
            if let ending = state.check(now: self.server.loop.milliseconds) {
                self.endLingering(ending)
            } else {
                self.armLingerTimer(state)
            }
        }
    }

    private func endLingering(_ ending: LingeringClose.Ending) {
        guard let state = linger, !stream.isClosing else { return }
        server.log.debug("HTTP lingering close of \(stream.peerAddress?.description ?? "?") ended (\(ending.rawValue)) "
            + "after \(server.loop.milliseconds - state.startedAt) ms, \(state.discardedBytes) bytes discarded")
        close()
    }

    // MARK: Timers

    private func armRequestTimer() {
        timerIsForRequest = true
        timer?.start(timeout: server.options.requestTimeout) { [weak self] in
            guard let self else { return }
            self.server.log.debug("HTTP request timeout from \(self.stream.peerAddress?.description ?? "?")")
            self.pending.releaseStorage()
            self.stream.write(HTTPResponse.error(408, "request not completed within \(self.server.options.requestTimeout) ms")
                .serialized(keepAlive: false))
            self.closeLingering()
        }
    }

    private func armIdleTimer() {
        timerIsForRequest = false
        timer?.start(timeout: server.options.idleTimeout) { [weak self] in self?.close() }
    }

    /// Closes once the response is flushed, without lingering (the server is stopping).
    private func closeAfterFlush() {
        timer?.stop()
        stream.closeAfterFlush()
    }

    private func close() {
        timer?.stop()
        stream.close()
    }
}
