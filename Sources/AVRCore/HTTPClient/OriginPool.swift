/// The connections to one host:port and the requests waiting for one.
final class OriginPool {
    private unowned let client: HTTPClient
    let host: String
    let port: Int
    let tls: TLSClient?
    private(set) var connections: [ObjectIdentifier: ClientConnection] = [:]
    private var idle: [ClientConnection] = []
    private var waiting: [Exchange] = []
    private var waitingHead = 0

    init(client: HTTPClient, host: String, port: Int, tls: TLSClient?) {
        self.client = client
        self.tls = tls
        self.host = host
        self.port = port
    }

    func enqueue(_ exchange: Exchange) {
        if let connection = idle.popLast() {
            connection.run(exchange, reused: true)
            return
        }
        if connections.count < client.options.maxConnectionsPerOrigin {
            open().run(exchange, reused: false)
            return
        }
        if waiting.count - waitingHead >= client.options.maxWaitingPerOrigin {
            exchange.finish(.failure(.tooManyPending(client.options.maxWaitingPerOrigin)))
            return
        }
        waiting.append(exchange)
    }

    private func open() -> ClientConnection {
        let connection = ClientConnection(loop: client.loop, host: host, port: port, tls: tls, options: client.options)
        let id = ObjectIdentifier(connection)
        connections[id] = connection
        connection.onIdle = { [unowned self] connection in self.becameIdle(connection) }
        connection.onClosed = { [unowned self] connection in
            self.connections[id] = nil
            self.idle.removeAll { $0 === connection }
            self.startWaiting()
        }
        connection.onRetry = { [unowned self] exchange in self.enqueue(exchange) }
        return connection
    }

    private func becameIdle(_ connection: ClientConnection) {
        if let next = nextWaiting() {
            connection.run(next, reused: true)
        } else {
            idle.append(connection)
        }
    }

    private func startWaiting() {
        while connections.count < client.options.maxConnectionsPerOrigin, let next = nextWaiting() {
            open().run(next, reused: false)
        }
    }

    private func nextWaiting() -> Exchange? {
        while waitingHead < waiting.count {
            let exchange = waiting[waitingHead]
            waitingHead += 1
            if waitingHead == waiting.count { waiting = []; waitingHead = 0 }
            if !exchange.isFinished { return exchange }
        }
        return nil
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
        for exchange in waiting[waitingHead...] { exchange.finish(.failure(.shutDown)) }
        waiting = []
        waitingHead = 0
        for connection in connections.values { connection.shutdown() }
    }
}
