import AVRProtocol

/// A request as the pool and its connections see it: the same object from enqueue to its end.
protocol PooledRequest: AnyObject {
    /// Finished already (timed out, or its pool shut down): nothing more is done for it.
    var isFinished: Bool { get }
    /// Already retried once on a new connection after a stale keep-alive one.
    var retried: Bool { get }
}

/// The life of one pooled keep-alive HTTP/1.1 client connection, one exchange at a time, as
/// events in and actions out, without I/O. `ClientConnection` is its shell; the response
/// bytes are parsed there, and only their outcome comes here.
///
/// fresh → connecting(request) → busy(request) → idle ⇄ busy → closed
struct ClientConnectionStateMachine<Request: PooledRequest> {
    enum State {
        /// No connection yet, nothing asked of it.
        case fresh
        /// Resolve, connect and TLS under the request's deadline.
        case connecting(Request)
        /// The request is written; its response is awaited. `reused`: the connection carried
        /// an earlier exchange, so the server may have closed it meanwhile.
        case busy(Request, reused: Bool)
        /// Kept alive between exchanges; the idle timer runs.
        case idle
        case closed
    }

    enum Action {
        case none
        /// Connect within the request's deadline.
        case connect(Request)
        /// Stop the idle timer, reset the parser, write the request.
        case send(Request)
        /// A connection that came after this one was closed: close it.
        case discardStream
        /// Hand the response to the request; then arm the idle timer and offer the
        /// connection back to the pool when `keepAlive`, else close.
        case complete(Request, keepAlive: Bool)
        /// Close, then fail the request.
        case fail(Request, HTTPClientError)
        /// Close, then give the request back to the pool for a new connection.
        case retry(Request)
        /// Close; no request is waiting on this connection.
        case close
    }

    private(set) var state = State.fresh

    /// The request this connection carries, if any.
    var current: Request? {
        switch state {
        case .connecting(let request), .busy(let request, _): request
        case .fresh, .idle, .closed: nil
        }
    }

    mutating func run(_ request: Request) -> Action {
        switch state {
        case .fresh:
            state = .connecting(request)
            return .connect(request)
        case .idle:
            state = .busy(request, reused: true)
            return .send(request)
        case .closed:
            return .fail(request, .connectionUnusable)
        case .connecting, .busy:
            assertionFailure("a pooled connection runs one exchange at a time")
            return .fail(request, .connectionUnusable)
        }
    }

    mutating func connected() -> Action {
        switch state {
        case .connecting(let request):
            state = .busy(request, reused: false)
            return .send(request)
        default:
            return .discardStream
        }
    }

    mutating func connectFailed(_ error: HTTPClientError) -> Action {
        guard case .connecting(let request) = state else { return .none }
        state = .closed
        return .fail(request, error)
    }

    /// The whole response arrived; `keepAlive`: the response allows another exchange.
    mutating func responseReceived(keepAlive: Bool) -> Action {
        guard case .busy(let request, _) = state else { return .none }
        state = keepAlive ? .idle : .closed
        return .complete(request, keepAlive: keepAlive)
    }

    mutating func responseInvalid(_ reason: HTTPResponseFailure) -> Action {
        guard case .busy(let request, _) = state else { return .none }
        state = .closed
        return .fail(request, .invalidResponse(reason))
    }

    /// Bytes arrived while no request was out: the connection is out of step.
    mutating func unexpectedBytes() -> Action {
        guard case .idle = state else { return .none }
        state = .closed
        return .close
    }

    /// The server ended the connection. `failure`: how (nil: a clean end); `sawBytes`:
    /// whether any response byte came; `atEOF`: the parser's verdict on a response that ends
    /// with the connection.
    mutating func peerEnded(_ failure: StreamFailure?, sawBytes: Bool, atEOF: HTTPResponseParser.Outcome) -> Action {
        guard case .busy(let request, let reused) = state else {
            if case .closed = state { return .none }
            let request = current
            state = .closed
            if let request { return .fail(request, .connectionClosed(.closedBeforeResponse)) }
            return .close
        }
        state = .closed
        // A truncated TLS stream is no end of a close-delimited body.
        if case .tls(let reason) = failure, sawBytes { return .fail(request, .tls(reason)) }
        switch atEOF {
        case .complete:
            return .complete(request, keepAlive: false)
        case .failure(let reason):
            // The server closed an idle keep-alive connection just as it was reused.
            if reused && !sawBytes && !request.retried { return .retry(request) }
            return .fail(request, .connectionClosed(reason))
        case .needMore:
            return .fail(request, .connectionClosed(.closedMidResponse))
        }
    }

    mutating func idleTimerFired() -> Action {
        guard case .idle = state else { return .none }
        state = .closed
        return .close
    }

    /// Closes whatever happens; a request in flight is left to its owner (the pool, which
    /// timed it out).
    mutating func abort() -> Action {
        if case .closed = state { return .none }
        state = .closed
        return .close
    }

    /// The client is shutting down: a request in flight fails.
    mutating func shutdown() -> Action {
        let request = current
        if case .closed = state { return .none }
        state = .closed
        if let request { return .fail(request, .shutDown) }
        return .close
    }
}
