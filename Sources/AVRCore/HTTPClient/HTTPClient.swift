import AVRProtocol

/// An outgoing HTTP/1.1 request.
package struct HTTPClientRequest: Sendable {
    package var method: String
    package var host: String
    package var port: Int
    /// The `Host` header value (host, plus the port when it is not the default).
    package var hostHeader: String
    package var target: String
    package var headers: [(name: String, value: String)]
    package var body: [UInt8]
    /// Whether the connection is TLS (`https://`), verified by the client's `TLSClient`.
    package var usesTLS: Bool

    package init(method: String, host: String, port: Int, hostHeader: String, target: String,
                headers: [(name: String, value: String)] = [], body: [UInt8] = [], usesTLS: Bool = false) {
        self.method = method
        self.usesTLS = usesTLS
        self.host = host
        self.port = port
        self.hostHeader = hostHeader
        self.target = target
        self.headers = headers
        self.body = body
    }
}

package struct HTTPClientResponse: Sendable {
    package var status: Int
    package var headers: [(name: String, value: String)]
    package var body: [UInt8]
}

package enum HTTPClientError: Error, CustomStringConvertible, Sendable {
    case resolve(UVError)
    case connect(UVError)
    /// The TLS handshake (or a later record) failed: OpenSSL's reason.
    case tls(String)
    case timeout(UInt64)
    /// The server closed the connection before the response was complete.
    case connectionClosed(HTTPResponseFailure)
    /// The pooled connection was already closed when the request came to it.
    case connectionUnusable
    /// No timer could be made for the request's deadline.
    case noTimer
    case invalidResponse(HTTPResponseFailure)
    case tooManyPending(Int)
    case shutDown

    package var description: String {
        switch self {
        case .resolve(let error): "DNS lookup failed (\(error))"
        case .connect(let error): "connection failed (\(error))"
        case .tls(let reason): "TLS failed: \(reason)"
        case .timeout(let ms): "no complete response within \(ms) ms"
        case .connectionClosed(let reason): "\(reason)"
        case .connectionUnusable: "connection closed before the request was sent"
        case .noTimer: "out of timer handles"
        case .invalidResponse(let reason): "invalid response: \(reason)"
        case .tooManyPending(let limit): "more than \(limit) requests waiting for a connection"
        case .shutDown: "client shut down"
        }
    }
}

/// An HTTP/1.1 client on one loop with keep-alive connections pooled per origin.
///
/// Each request has one deadline covering the wait for a connection, the connect, the send
/// and the whole response. A connection whose request timed out or failed is closed, never
/// reused. A reused connection that the server had already closed (the request failed
/// before any response byte) is retried once on a new connection. Redirects are returned,
/// not followed. Response bodies are bounded.
package final class HTTPClient {
    package struct Options: Sendable {
        package var maxConnectionsPerOrigin = 256
        package var maxWaitingPerOrigin = 4096
        package var maxResponseBodyBytes = 64 * 1024
        /// Idle pooled connections are closed after this long (ms).
        package var idleTimeout: UInt64 = 30_000
        package init() {}
    }

    let loop: EventLoop
    let options: Options
    /// Verifies and carries `https://` requests; without it they fail.
    let tls: TLSClient?
    private var pools: [String: OriginPool] = [:]
    private var isShutDown = false

    package init(loop: EventLoop, options: Options = Options(), tls: TLSClient? = nil) {
        self.loop = loop
        self.options = options
        self.tls = tls
    }

    /// Sends `request`; `completion` runs exactly once, on the loop.
    package func execute(_ request: HTTPClientRequest, timeout: UInt64,
                        completion: @escaping (Result<HTTPClientResponse, HTTPClientError>) -> Void) {
        assertOnLoop(loop)
        guard !isShutDown else { return completion(.failure(.shutDown)) }
        if request.usesTLS && tls == nil { return completion(.failure(.tls("TLS is not available"))) }
        let key = (request.usesTLS ? "https://" : "http://") + "\(request.host):\(request.port)"
        let pool: OriginPool
        if let existing = pools[key] { pool = existing } else {
            pool = OriginPool(client: self, host: request.host, port: request.port, tls: request.usesTLS ? tls : nil)
            pools[key] = pool
        }
        let exchange = Exchange(request: request, timeoutMs: timeout, completion: completion)
        guard let timer = try? Timer(loop: loop) else {
            return completion(.failure(.noTimer))
        }
        exchange.timer = timer
        timer.start(timeout: timeout) { [weak pool] in
            pool?.timedOut(exchange)
        }
        pool.enqueue(exchange)
    }


    /// Closes every connection; requests in progress fail with `.shutDown`.
    package func shutdown() {
        assertOnLoop(loop)
        isShutDown = true
        // The pools stay: their connections report their close to them later.
        for pool in pools.values { pool.shutdown() }
    }
}

/// One request in flight: finished exactly once, which releases its timer.
final class Exchange: PooledRequest {
    let request: HTTPClientRequest
    let timeoutMs: UInt64
    private var completion: ((Result<HTTPClientResponse, HTTPClientError>) -> Void)?
    var timer: Timer?
    var retried = false

    init(request: HTTPClientRequest, timeoutMs: UInt64,
         completion: @escaping (Result<HTTPClientResponse, HTTPClientError>) -> Void) {
        self.request = request
        self.timeoutMs = timeoutMs
        self.completion = completion
    }

    var isFinished: Bool { completion == nil }

    func finish(_ result: Result<HTTPClientResponse, HTTPClientError>) {
        guard let completion else { return }
        self.completion = nil
        timer?.close()
        timer = nil
        completion(result)
    }
}

@available(*, unavailable)
extension HTTPClient: Sendable {}
