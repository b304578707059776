import AVRProtocol

/// One client connection of `HTTPServer`.
///
/// States: reading a request (a request timer runs from its first byte), waiting for the
/// handler (further pipelined bytes are buffered, bounded), idle between requests (an idle
/// timer runs; the read buffer is released so thousands of idle keep-alive connections —
/// one per live call with Asterisk's CURL() — cost little; before the first request the
/// shorter first-request timer runs instead), backlogged (a client that does not read its
/// responses: once more than `maxUnsentBytes` is unsent, nothing is read or answered until
/// the output drains, or the connection is closed after the request timeout), yielding (a
/// loop turn's worth of pipelined requests answered; the rest waits a turn), and lingering:
/// after a response that ends the connection (an early error, or `Connection: close`) the write side is shut
/// down and input is read and discarded, bounded (`LingeringClose`), so a client still
/// sending its body gets to read the response instead of a reset.
///
/// The decisions are `HTTPConnectionStateMachine`'s; this shell turns stream, parser, timer
/// and handler callbacks into its events and its actions into calls. What stays here is
/// byte plumbing: the parked pipelined bytes and the loop that parses them.
final class HTTPConnection {
    private unowned let server: HTTPServer
    private let stream: TCPStream
    private let parser: HTTPRequestParser
    private let timer: Timer?
    private var machine: HTTPConnectionStateMachine
    /// Received bytes not yet parsed: the tail after a complete request (pipelining).
    private var pending = ByteBuffer()
    /// The request the parser completed last, until `.dispatch` hands it over.
    private var parsedRequest: HTTPRequest?
    /// Re-entrancy guard of the parse loop (a handler may answer inside `dispatch`).
    private var inParseLoop = false
    /// Called once the connection is fully closed.
    var onClosed: (() -> Void)?
    /// Loop time (ms) since which the connection is idle (or since it was accepted).
    private(set) var idleSince: UInt64 = 0
    /// Whether the request being answered is a HEAD: its response goes without the body.
    private var answeringHead = false
    /// Response bytes written since this connection last got input or a loop turn.
    private var writtenThisTurn = 0
    /// The request was claimed by `HTTPServer.takeover`: the connection is handed over once
    /// the parse loop has returned (with the bytes that followed the request).
    private var takeover: HTTPServer.Takeover?

    init(server: HTTPServer, stream: TCPStream) {
        self.server = server
        self.stream = stream
        parser = HTTPRequestParser(limits: .init(maxHeaderBytes: server.options.maxHeaderBytes,
                                                 maxBodyBytes: server.options.maxBodyBytes))
        timer = try? Timer(loop: server.loop)
        machine = HTTPConnectionStateMachine(configuration: .init(
            requestTimeout: server.options.requestTimeout, idleTimeout: server.options.idleTimeout,
            firstRequestTimeout: server.options.firstRequestTimeout, maxUnsentBytes: server.options.maxUnsentBytes,
            linger: server.options.linger))
    }

    private var now: UInt64 { server.loop.milliseconds }

    /// Between requests, nothing under way (see `HTTPServer`'s shedding under fd pressure).
    var isIdle: Bool { machine.isIdle && pending.isEmpty && !stream.isClosing }

    /// Whether a request has been answered on this connection.
    var hasAnswered: Bool { machine.hasAnswered }

    /// Closes an idle connection to free its file descriptor.
    func shed() {
        assertOnLoop(server.loop)
        guard isIdle else { return }
        perform(machine.serverStopping())
    }

    func start() {
        assertOnLoop(server.loop)
        stream.onRead = { [weak self] bytes in self?.received(bytes) }
        stream.onDrain = { [weak self] in
            guard let self, self.machine.state == .backlogged else { return }
            self.idleSince = self.now
            self.perform(self.machine.outputDrained())
        }
        stream.onEnd = { [weak self] _ in
            guard let self else { return }
            self.perform(self.machine.peerClosed())
        }
        stream.onClose = { [weak self] in
            guard let self else { return }
            self.machine.streamClosed()
            self.timer?.close()
            let callback = self.onClosed
            self.onClosed = nil
            callback?()
        }
        idleSince = now
        perform(machine.started())
    }

    /// Server shutdown: idle and lingering connections close now, busy ones after their response.
    func shutdown() {
        assertOnLoop(server.loop)
        perform(machine.serverStopping())
    }

    private func received(_ bytes: UnsafeRawBufferPointer) {
        writtenThisTurn = 0
        if machine.hasEnded {
            perform(machine.discarded(bytes.count, now: now))
            return
        }
        if !machine.acceptsRequests || !pending.isEmpty {
            pending.append(bytes)
            // Bound what a pipelining client can park here while we answer.
            if pending.readableBytes > server.options.maxHeaderBytes + server.options.maxBodyBytes {
                stream.stopReading()
            }
            parsePending()
            return
        }
        // Common case: parse straight from the loop's read buffer, copying nothing.
        inParseLoop = true
        let consumed = parse(bytes)
        inParseLoop = false
        if let takeover {
            return handOver(takeover, rest: Array(UnsafeRawBufferPointer(rebasing: bytes[consumed...])))
        }
        if consumed < bytes.count {
            if machine.hasEnded {
                perform(machine.discarded(bytes.count - consumed, now: now))
            } else {
                pending.append(UnsafeRawBufferPointer(rebasing: bytes[consumed...]))
            }
        }
        parsePending()
    }

    /// Parses parked bytes until a request is outstanding or they run out; releases them
    /// once the connection has ended.
    private func parsePending() {
        guard !inParseLoop else { return }
        inParseLoop = true
        defer { inParseLoop = false }
        while machine.acceptsRequests && !pending.isEmpty && !stream.isClosing {
            let consumed = pending.withReadableBytes { parse($0) }
            pending.moveReaderIndex(forwardBy: consumed)
        }
        if let takeover {
            let rest = pending.withReadableBytes { Array($0) }
            return handOver(takeover, rest: rest)
        }
        // Ended: what is left unparsed belongs to a request that will not be answered.
        if pending.isEmpty || machine.hasEnded { pending.releaseStorage() }
        if machine.acceptsRequests && !stream.isClosing { stream.startReading() }
    }

    /// Feeds `bytes` to the parser and hands the outcome to the machine; returns the bytes consumed.
    private func parse(_ bytes: UnsafeRawBufferPointer) -> Int {
        let consumed: Int
        let result: HTTPConnectionStateMachine.ParseResult
        let wasIdle = machine.isIdle
        defer { if !wasIdle && machine.isIdle { idleSince = now } }
        switch parser.feed(bytes) {
        case .needMore:
            consumed = bytes.count
            result = .needMore(inMessage: parser.inMessage, expectsContinue: parser.expectsContinue)
        case .request(let request, let used):
            consumed = used
            parsedRequest = request
            result = .request(keepAlive: request.keepAlive)
        case .failure(let failure):
            consumed = bytes.count
            // A refused head is someone probing (or a broken proxy): worth an info line. The
            // other failures (limits, garbage) stay at debug as before.
            let line = "HTTP \(HTTPConnectionStateMachine.status(for: failure)) to "
                + "\(stream.peerAddress?.description ?? "?") and close: \(failure)"
            if case .strictHead = failure { server.log.info(line) } else { server.log.debug(line) }
            result = .failure(failure)
        }
        perform(machine.parsed(result, now: now), failure: result)
        return consumed
    }

    private func dispatch() {
        guard let request = parsedRequest else { return }
        parsedRequest = nil
        if let claim = server.takeover?(request) {
            takeover = claim
            return
        }
        let isHead = request.method == "HEAD"
        var answered = false
        server.handler(request) { [weak self] response in
            guard let self, !answered else { return }
            answered = true
            guard !self.stream.isClosing else { return }
            let keepAlive = request.keepAlive && !response.closesConnection
            self.answer = response
            self.answeringHead = isHead
            self.perform(self.machine.responded(keepAlive: keepAlive, now: self.now))
        }
    }

    /// Gives the stream to the `takeover` that claimed the request: this connection lets go
    /// of it (timer, callbacks, buffers) and the server forgets it.
    private func handOver(_ claim: HTTPServer.Takeover, rest: [UInt8]) {
        takeover = nil
        let stream = self.stream
        timer?.close()
        pending.releaseStorage()
        stream.onRead = nil
        stream.onDrain = nil
        stream.onEnd = nil
        stream.onClose = nil
        let callback = onClosed
        onClosed = nil
        callback?()
        claim(stream, rest)
    }

    /// The handler's response, until `.writeResponse` writes it.
    private var answer: HTTPResponse?

    // MARK: Actions

    private func perform(_ actions: [HTTPConnectionStateMachine.Action],
                         failure: HTTPConnectionStateMachine.ParseResult? = nil) {
        for action in actions {
            switch action {
            case .armTimer(let milliseconds):
                timer?.start(timeout: milliseconds) { [weak self] in
                    guard let self else { return }
                    self.writtenThisTurn = 0
                    self.perform(self.machine.timerFired(now: self.now))
                }
            case .stopTimer:
                timer?.stop()
            case .sendContinue:
                parser.continueSent()
                stream.write(HTTPResponseHead.serialize(status: 100, contentType: nil, body: [], keepAlive: true))
            case .dispatch:
                dispatch()
            case .writeResponse(let keepAlive):
                if let answer {
                    let bytes = answer.serialized(keepAlive: keepAlive, omittingBody: answeringHead)
                    writtenThisTurn += bytes.count
                    stream.write(bytes)
                }
                answer = nil
                perform(machine.responseWritten(unsentBytes: stream.pendingWriteBytes, writtenThisTurn: writtenThisTurn))
                if machine.isIdle { idleSince = now }
            case .writeError(let status):
                stream.write(errorResponse(status, failure).serialized(keepAlive: false))
            case .shutdownWrite:
                stream.shutdown { [weak self] error in
                    // The peer is gone (or the stream closed first): nothing left to wait for.
                    guard let self, error != nil else { return }
                    self.perform(self.machine.shutdownFailed())
                }
            case .startReading:
                stream.startReading()
            case .stopReading:
                stream.stopReading()
            case .releasePending, .resumeParsing:
                // Inside the parse loop this waits for the loop's end, which does it.
                parsePending()
            case .closeAfterFlush:
                stream.closeAfterFlush()
            case .close:
                stream.close()
            case .closeStalled:
                server.log.info("HTTP client \(stream.peerAddress?.description ?? "?") left \(stream.pendingWriteBytes) "
                    + "response bytes unread for \(server.options.requestTimeout) ms: closed")
                stream.close()
            case .endLingering(let drain, let why):
                guard !stream.isClosing else { break }
                server.log.debug("HTTP lingering close of \(stream.peerAddress?.description ?? "?") ended (\(why.rawValue)) "
                    + "after \(now - drain.startedAt) ms, \(drain.discardedBytes) bytes discarded")
                stream.close()
            }
        }
    }

    private func errorResponse(_ status: Int, _ result: HTTPConnectionStateMachine.ParseResult?) -> HTTPResponse {
        if status == 408 {
            server.log.debug("HTTP request timeout from \(stream.peerAddress?.description ?? "?")")
            return .error(408, "request not completed within \(server.options.requestTimeout) ms")
        }
        guard case .failure(let failure)? = result else { return .error(status, "bad request") }
        switch failure {
        case .malformed(let reason): return .error(400, "malformed HTTP request: \(reason)")
        case .strictHead(let reason): return .error(400, "HTTP request refused: \(reason)")
        case .headersTooLarge: return .error(431, "request headers exceed \(server.options.maxHeaderBytes) bytes")
        case .bodyTooLarge: return .error(413, "request body exceeds \(server.options.maxBodyBytes) bytes")
        }
    }
}
