import AVRProtocol

/// One pooled keep-alive connection; runs one exchange at a time. Its life is
/// `ClientConnectionStateMachine`'s; this class turns stream, parser and timer callbacks into
/// the machine's events and carries out its actions.
final class ClientConnection {
    private let loop: EventLoop
    private let host: String
    private let port: Int
    private let options: HTTPClient.Options
    private let tls: TLSClient?
    private var machine = ClientConnectionStateMachine<Exchange>()
    private var stream: ClientStream?
    private let parser: HTTPResponseParser
    /// Set once the connection is closing: `onClosed` follows.
    private var closing = false
    private var idleTimer: Timer?
    private var body: [UInt8] = []

    var onIdle: ((ClientConnection) -> Void)?
    var onClosed: ((ClientConnection) -> Void)?
    var onRetry: ((Exchange) -> Void)?

    /// The exchange this connection carries, if any.
    var current: Exchange? { machine.current }

    init(loop: EventLoop, host: String, port: Int, tls: TLSClient?, options: HTTPClient.Options) {
        self.loop = loop
        self.tls = tls
        self.host = host
        self.port = port
        self.options = options
        parser = HTTPResponseParser()
        parser.onBody = { [weak self] chunk in
            guard let self else { return false }
            guard self.body.count + chunk.count <= self.options.maxResponseBodyBytes else { return false }
            self.body.append(contentsOf: chunk)
            return true
        }
    }

    // MARK: Events in

    func run(_ exchange: Exchange) {
        assertOnLoop(loop)
        perform(machine.run(exchange))
    }

    /// Closes the connection; the current exchange (if any) is left to its owner.
    func abort() {
        assertOnLoop(loop)
        perform(machine.abort())
    }

    func shutdown() {
        assertOnLoop(loop)
        perform(machine.shutdown())
    }

    private func received(_ bytes: UnsafeRawBufferPointer) {
        guard current != nil else { return perform(machine.unexpectedBytes()) }
        switch parser.feed(bytes) {
        case .needMore: break
        case .complete: perform(machine.responseReceived(keepAlive: parser.keepAlive))
        case .failure(let reason): perform(machine.responseInvalid(reason))
        }
    }

    private func peerEnded(_ failure: StreamFailure?) {
        perform(machine.peerEnded(failure, sawBytes: parser.sawBytes, atEOF: parser.finishAtEOF()))
    }

    // MARK: Actions out

    private func perform(_ action: ClientConnectionStateMachine<Exchange>.Action) {
        switch action {
        case .none:
            break
        case .connect(let exchange):
            connect(within: exchange.timeoutMs)
        case .send(let exchange):
            idleTimer?.stop()
            guard let stream else { return }
            parser.reset()
            body = []
            stream.write(exchange.request.serialized())
        case .discardStream:
            break // handled where the stream is at hand (connect)
        case .complete(let exchange, let keepAlive):
            let response = HTTPClientResponse(status: parser.status, headers: parser.headers, body: body)
            body = []
            exchange.finish(.success(response))
            if keepAlive && !closing {
                armIdleTimer()
                onIdle?(self)
            } else {
                close()
            }
        case .fail(let exchange, let error):
            close()
            exchange.finish(.failure(error))
        case .retry(let exchange):
            exchange.retried = true
            let retry = onRetry
            close()
            retry?(exchange)
        case .close:
            close()
        }
    }

    private func connect(within timeout: UInt64) {
        // The exchange's own deadline bounds the connect (a timeout closes this connection);
        // the connector gets it too, so that a TLS handshake nobody answers ends as well.
        Connector.connect(loop: loop, host: host, port: port, tls: tls, timeout: timeout) { [self] result in
            switch result {
            case .failure(let failure):
                let error: HTTPClientError = switch failure {
                case .tcp(.resolve(_, let error)): .resolve(error)
                case .tcp(.connect(_, _, let error)): .connect(error)
                case .tcp(.timedOut), .timedOut: .connect(.timedOut)
                case .tls(let reason): .tls(reason)
                }
                perform(machine.connectFailed(error))
            case .success(let stream):
                let action = machine.connected()
                guard case .send = action else { return stream.close() }
                self.stream = stream
                stream.onClose = { [self] in didClose() }
                stream.onRead = { [weak self] bytes in self?.received(bytes) }
                stream.onEnd = { [weak self] failure in self?.peerEnded(failure) }
                stream.startReading()
                perform(action)
            }
        }
    }

    private func armIdleTimer() {
        if idleTimer == nil { idleTimer = try? Timer(loop: loop) }
        idleTimer?.start(timeout: options.idleTimeout) { [weak self] in
            guard let self else { return }
            self.perform(self.machine.idleTimerFired())
        }
    }

    private func close() {
        guard !closing else { return }
        closing = true
        idleTimer?.close()
        idleTimer = nil
        if let stream {
            stream.close()
        } else {
            didClose()
        }
    }

    private func didClose() {
        closing = true
        idleTimer?.close()
        idleTimer = nil
        stream = nil
        let callback = onClosed
        onClosed = nil
        onIdle = nil
        onRetry = nil
        parser.onBody = nil
        callback?(self)
    }
}
