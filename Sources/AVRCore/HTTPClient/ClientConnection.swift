import AVRProtocol

/// One pooled keep-alive connection; runs one exchange at a time.
final class ClientConnection {
    private let loop: EventLoop
    private let host: String
    private let port: Int
    private let options: HTTPClient.Options
    private let tls: TLSClient?
    private var stream: ClientStream?
    private let parser: HTTPResponseParser
    private var connected = false
    private var connectStarted = false
    private var closed = false
    private var idleTimer: Timer?
    private(set) var current: Exchange?
    private var reused = false
    private var body: [UInt8] = []

    var onIdle: ((ClientConnection) -> Void)?
    var onClosed: ((ClientConnection) -> Void)?
    var onRetry: ((Exchange) -> Void)?

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

    func run(_ exchange: Exchange, reused: Bool) {
        assertOnLoop(loop)
        current = exchange
        self.reused = reused
        idleTimer?.stop()
        if connected {
            send()
        } else if !connectStarted {
            connectStarted = true
            connect()
        }
    }

    private func connect() {
        // The exchange's own deadline bounds the connect (a timeout closes this connection);
        // the connector gets it too, so that a TLS handshake nobody answers ends as well.
        Connector.connect(loop: loop, host: host, port: port, tls: tls, timeout: current?.timeoutMs) { [self] result in
            switch result {
            case .failure(let failure):
                guard !closed else { return }
                switch failure {
                case .tcp(.resolve(_, let error)): fail(.resolve(error))
                case .tcp(.connect(_, _, let error)): fail(.connect(error))
                case .tcp(.timedOut), .timedOut: fail(.connect(.timedOut))
                case .tls(let reason): fail(.tls(reason))
                }
            case .success(let stream):
                guard !closed else { return stream.close() }
                self.stream = stream
                connected = true
                stream.onClose = { [self] in didClose() }
                stream.onRead = { [weak self] bytes in self?.received(bytes) }
                stream.onEnd = { [weak self] failure in self?.peerClosed(failure) }
                stream.startReading()
                if current != nil { send() }
            }
        }
    }

    private func send() {
        guard let exchange = current, let stream else { return }
        parser.reset()
        body = []
        stream.write(exchange.request.serialized())
    }

    private func received(_ bytes: UnsafeRawBufferPointer) {
        guard current != nil else {
            // Bytes nobody asked for: the connection is out of step; drop it.
            return abort()
        }
        switch parser.feed(bytes) {
        case .needMore: break
        case .complete: completed()
        case .failure(let reason): fail(.invalidResponse(reason))
        }
    }

    private func peerClosed(_ failure: StreamFailure?) {
        guard let exchange = current else { return abort() }
        // A truncated TLS stream is no end of a close-delimited body.
        if case .tls(let reason) = failure, parser.sawBytes { return fail(.tls(reason)) }
        switch parser.finishAtEOF() {
        case .complete:
            completed(reusable: false)
        case .failure(let reason):
            if reused && !parser.sawBytes && !exchange.retried {
                // The server closed an idle keep-alive connection just as we reused it.
                exchange.retried = true
                current = nil
                abort()
                onRetry?(exchange)
            } else {
                fail(.connectionClosed(reason.description))
            }
        case .needMore:
            fail(.connectionClosed("connection closed in the middle of the response"))
        }
    }

    private func completed(reusable: Bool = true) {
        guard let exchange = current else { return }
        current = nil
        let response = HTTPClientResponse(status: parser.status, headers: parser.headers, body: body)
        body = []
        let keep = reusable && parser.keepAlive && !closed
        exchange.finish(.success(response))
        if keep {
            armIdleTimer()
            onIdle?(self)
        } else {
            abort()
        }
    }

    private func armIdleTimer() {
        if idleTimer == nil { idleTimer = try? Timer(loop: loop) }
        idleTimer?.start(timeout: options.idleTimeout) { [weak self] in self?.abort() }
    }

    private func fail(_ error: HTTPClientError) {
        let exchange = current
        current = nil
        abort()
        exchange?.finish(.failure(error))
    }

    /// Closes the connection; the current exchange (if any) is left to its owner.
    func abort() {
        assertOnLoop(loop)
        guard !closed else { return }
        closed = true
        idleTimer?.close()
        idleTimer = nil
        if let stream {
            stream.close()
        } else {
            didClose()
        }
    }

    func shutdown() {
        assertOnLoop(loop)
        let exchange = current
        current = nil
        abort()
        exchange?.finish(.failure(.shutDown))
    }

    private func didClose() {
        closed = true
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
