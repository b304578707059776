/// An HTTP/1.1 server on one loop: keep-alive, pipelining (answered in order), chunked and
/// Content-Length bodies, `Expect: 100-continue`, size limits and timeouts.
package final class HTTPServer {
    package struct Options: Sendable {
        package var maxHeaderBytes = 16 * 1024
        package var maxBodyBytes = 64 * 1024
        /// A request must be complete this long after its first byte (ms).
        package var requestTimeout: UInt64 = 10_000
        /// An idle keep-alive connection is closed after this long (ms).
        package var idleTimeout: UInt64 = 300_000
        /// A new connection must begin its first request this long after it is accepted (ms).
        package var firstRequestTimeout: UInt64 = 10_000
        /// A connection whose unsent response bytes exceed this stops being read (and its
        /// pipelined requests answered) until they drain.
        package var maxUnsentBytes = 64 * 1024
        /// Idle connections closed (those that never sent a request first, then those idle
        /// longest) each time accepting fails for lack of file descriptors.
        package var shedOnFDPressure = 32
        /// Bounds of the drain after a response that ends the connection (see `LingeringClose`).
        var linger = LingeringClose.Bounds()
        package init() {}
    }

    /// Answers one request; `respond` must be called exactly once, on the loop.
    package typealias Handler = (HTTPRequest, @escaping (HTTPResponse) -> Void) -> Void
    /// Takes over a connection whose request it claimed: the stream (nothing answered yet,
    /// no callbacks set) and the bytes that followed the request.
    typealias Takeover = (TCPStream, [UInt8]) -> Void

    let loop: EventLoop
    let options: Options
    let handler: Handler
    private var listener: TCPListener?
    private var connections: [ObjectIdentifier: HTTPConnection] = [:]
    let log: Logger
    /// Accepting ran out of file descriptors: return true once something was closed to free
    /// one (the accept is retried at once; see `TCPListener.onAcceptPressure`).
    package var onAcceptPressure: ((UVError) -> Bool)?
    /// Asked for every request before the handler: a `Takeover` claims the connection (a
    /// WebSocket upgrade on `/media`); the HTTP server forgets it and answers nothing.
    var takeover: ((HTTPRequest) -> Takeover?)?

    package init(loop: EventLoop, host: String, port: Int, options: Options, log: Logger,
                reusePort: Bool = false, handler: @escaping Handler) throws(UVError) {
        self.loop = loop
        self.options = options
        self.handler = handler
        self.log = log
        let listener = try TCPListener(loop: loop, host: host, port: port, reusePort: reusePort)
        self.listener = listener
        listener.onConnection = { [unowned self] stream in self.accept(stream) }
        listener.onAcceptError = { [log] error in log.warn("HTTP accept failed: \(error)") }
        listener.onAcceptResumed = { [log] milliseconds, attempts in
            log.info("HTTP accepting again after \(milliseconds) ms (\(attempts) failed attempt(s))")
        }
        listener.onAcceptPressure = { [unowned self] error in
            if let relieve = self.onAcceptPressure { return relieve(error) }
            return self.shedIdleConnections(error)
        }
    }

    package var port: Int { listener?.port ?? 0 }

    private func accept(_ stream: TCPStream) {
        let connection = HTTPConnection(server: self, stream: stream)
        let id = ObjectIdentifier(connection)
        connections[id] = connection
        connection.onClosed = { [unowned self] in self.connections[id] = nil }
        connection.start()
    }

    /// Out of file descriptors (`error`, the failed accept's): closes idle connections, so the
    /// listener's retry can accept new requests: first those that never sent a request (oldest
    /// first), then keep-alive ones idle longest (a client reconnects for its next request at
    /// little cost). Returns whether any was closed (their fds are free at once: `uv_close`
    /// closes the socket).
    @discardableResult
    package func shedIdleConnections(_ error: UVError) -> Bool {
        let idle = connections.values.filter(\.isIdle).sorted {
            ($0.hasAnswered ? 1 : 0, $0.idleSince) < ($1.hasAnswered ? 1 : 0, $1.idleSince)
        }
        let victims = idle.prefix(options.shedOnFDPressure)
        guard !victims.isEmpty else { return false }
        log.warn("HTTP accept failed (\(error)): closing \(victims.count) idle connection(s) "
            + "(of \(idle.count) idle, \(connections.count) open)")
        for connection in victims { connection.shed() }
        return true
    }

    /// Stops accepting; open connections finish their current request and close.
    package func close() {
        assertOnLoop(loop)
        listener?.close()
        listener = nil
        for connection in connections.values { connection.shutdown() }
    }
}

@available(*, unavailable)
extension HTTPServer: Sendable {}
