/// The connections to one host:port and the requests waiting for one. The bookkeeping is
/// `OriginPoolStateMachine`'s; this class owns the connections and carries out its actions.
final class OriginPool {
    private unowned let client: HTTPClient
    let host: String
    let port: Int
    let tls: TLSClient?
    private var machine: OriginPoolStateMachine<Exchange>
    private(set) var connections: [Int: ClientConnection] = [:]

    init(client: HTTPClient, host: String, port: Int, tls: TLSClient?) {
        self.client = client
        self.tls = tls
        self.host = host
        self.port = port
        machine = OriginPoolStateMachine(maxConnections: client.options.maxConnectionsPerOrigin,
                                         maxWaiting: client.options.maxWaitingPerOrigin)
    }

    func enqueue(_ exchange: Exchange) {
        perform(machine.enqueue(exchange))
    }

    private func perform(_ action: OriginPoolStateMachine<Exchange>.Action) {
        switch action {
        case .none:
            break
        case .run(let exchange, let id):
            connections[id]?.run(exchange)
        case .open(let exchange, let id):
            open(id).run(exchange)
        case .reject(let exchange, let limit):
            exchange.finish(.failure(.tooManyPending(limit)))
        }
    }

    private func open(_ id: Int) -> ClientConnection {
        let connection = ClientConnection(loop: client.loop, host: host, port: port, tls: tls, options: client.options)
        connections[id] = connection
        connection.onIdle = { [unowned self] _ in self.perform(self.machine.connectionIdle(id)) }
        connection.onClosed = { [unowned self] _ in
            self.connections[id] = nil
            for action in self.machine.connectionClosed(id) { self.perform(action) }
        }
        connection.onRetry = { [unowned self] exchange in self.enqueue(exchange) }
        return connection
    }

    func timedOut(_ exchange: Exchange) {
        guard !exchange.isFinished else { return }
        // The connection carrying it (if any) cannot be reused: its response may still come.
        for connection in connections.values where connection.current === exchange {
            connection.abort()
        }
        exchange.finish(.failure(.timeout(exchange.timeoutMs)))
    }

    func shutdown() {
        for exchange in machine.shutdown() { exchange.finish(.failure(.shutDown)) }
        for connection in connections.values { connection.shutdown() }
    }
}
