import AVRProtocol

/// One pooled keep-alive connection; runs one exchange at a time. Its life is
/// `ClientConnectionStateMachine`'s; each exchange is an `HTTPRequestTask` on the connection's
/// stream (fixed body, no bound of its own: the exchange's deadline covers it), which hands the
/// stream back when the response leaves it reusable. This class turns the task's end, the idle
/// stream's and the timer's callbacks into the machine's events and carries out its actions.
final class ClientConnection {
    private let loop: EventLoop
    private let host: String
    private let port: Int
    private let options: HTTPClient.Options
    private let tls: TLSClient?
    private var machine = ClientConnectionStateMachine<Exchange>()
    private var stream: ClientStream?
    /// The exchange on the wire, if any.
    private var task: HTTPRequestTask?
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

    /// The exchange's task ended: its outcome, as the machine knows outcomes.
    private func exchangeEnded(_ task: HTTPRequestTask, _ result: Result<ClientStream?, HTTPRequestFailure>) {
        self.task = nil
        let sawBytes = task.parser.sawBytes
        switch result {
        case .success(let reusable):
            if let reusable { watchIdle(reusable) }
            perform(machine.responseReceived(keepAlive: reusable != nil), response: task.parser)
        case .failure(.invalidResponse(let reason)):
            perform(machine.responseInvalid(reason))
        case .failure(.connection(let failure)):
            let reason: HTTPResponseFailure = sawBytes ? .closedMidResponse : .closedBeforeResponse
            perform(machine.peerEnded(failure, sawBytes: sawBytes, atEOF: .failure(reason)))
        case .failure(.closedBeforeResponse):
            perform(machine.peerEnded(nil, sawBytes: sawBytes, atEOF: .failure(.closedBeforeResponse)))
        case .failure:
            perform(machine.peerEnded(nil, sawBytes: sawBytes, atEOF: .needMore))
        }
    }

    /// Between exchanges, bytes from the server put the connection out of step, and its end
    /// closes it.
    private func watchIdle(_ stream: ClientStream) {
        stream.onRead = { [weak self] _ in
            guard let self else { return }
            self.perform(self.machine.unexpectedBytes())
        }
        stream.onEnd = { [weak self] failure in
            guard let self else { return }
            self.perform(self.machine.peerEnded(failure, sawBytes: false, atEOF: .failure(.closedBeforeResponse)))
        }
    }

    // MARK: Actions out

    private func perform(_ action: ClientConnectionStateMachine<Exchange>.Action, response: HTTPResponseParser? = nil) {
        switch action {
        case .none:
            break
        case .connect(let exchange):
            connect(within: exchange.timeoutMs)
        case .send(let exchange):
            idleTimer?.stop()
            guard let stream else { return }
            send(exchange, on: stream)
        case .discardStream:
            break // handled where the stream is at hand (connect)
        case .complete(let exchange, let keepAlive):
            let response = HTTPClientResponse(status: response?.status ?? 0, headers: response?.headers ?? [], body: body)
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

    private func send(_ exchange: Exchange, on stream: ClientStream) {
        body = []
        let task = HTTPRequestTask(loop: loop, limits: .init())
        task.handsBackStream = true
        self.task = task
        let limit = options.maxResponseBodyBytes
        task.onBody = { [weak self] chunk in
            guard let self, self.body.count + chunk.count <= limit else { return false }
            self.body.append(contentsOf: chunk)
            return true
        }
        task.onEnd = { [weak self, unowned task] result in self?.exchangeEnded(task, result) }
        let request = exchange.request
        task.run(on: stream, head: .init(method: request.method, target: request.target, host: request.hostHeader,
                                         headers: request.headers),
                 body: .fixed(request.body))
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
        releaseTimerAndTask()
        if let stream {
            stream.close()
        } else {
            didClose()
        }
    }

    private func releaseTimerAndTask() {
        closing = true
        idleTimer?.close()
        idleTimer = nil
        task?.cancel()
        task = nil
    }

    private func didClose() {
        releaseTimerAndTask()
        stream = nil
        let callback = onClosed
        onClosed = nil
        onIdle = nil
        onRetry = nil
        callback?(self)
    }
}
