/// The life of one server-side HTTP/1.1 connection, without I/O: each method is one event
/// (with the loop time passed in where it matters) and returns what the connection must do.
/// `HTTPConnection` translates stream, parser, timer and handler callbacks into these events
/// and the actions into calls; the transcript tests drive it directly.
///
/// States carry their own data: whether the server is stopping while a request is under
/// way, and the lingering drain's bookkeeping (`LingeringClose`).
struct HTTPConnectionStateMachine {
    struct Configuration: Equatable {
        /// A request must be complete this long after its first byte (ms).
        var requestTimeout: UInt64
        /// An idle keep-alive connection is closed after this long (ms).
        var idleTimeout: UInt64
        /// A new connection must begin its first request this long after it is accepted (ms):
        /// connections that never send anything do not hold a file descriptor for long.
        var firstRequestTimeout: UInt64
        /// A response that leaves more unsent than this (bytes) stops the connection: nothing
        /// is read or answered until the client has taken it (response backpressure). Also the
        /// most response bytes answered to one connection's pipelined requests in one loop turn:
        /// past it the rest waits for the next turn, so the calls' timers run in between.
        var maxUnsentBytes: Int
        var linger: LingeringClose.Bounds
    }

    enum State: Equatable {
        /// Between requests; the idle timer runs (before the first request: the shorter
        /// first-request timer).
        case idle
        /// A request has begun; the request timer runs from its first byte.
        case receiving(stopping: Bool)
        /// The handler has the request; pipelined bytes wait.
        case awaitingResponse(stopping: Bool)
        /// A keep-alive response is being written (`responseWritten` tells how much is left).
        case sending
        /// Over `maxUnsentBytes` of the last response is unsent: nothing is read or parsed
        /// until the client takes it (`outputDrained`); the request timer bounds the wait.
        case backlogged
        /// This loop turn answered `maxUnsentBytes` already: parked requests wait for a 1 ms
        /// timer, which fires on a later loop turn, after the loop has polled for I/O (a zero
        /// timer armed from a timer callback would run in the same timer phase with libuv 1.44).
        case yielding
        /// The last response is written; the write side is shut once it is flushed and input
        /// is discarded, bounded.
        case lingering(LingeringClose)
        /// The server is stopping: close once the last response is flushed, no lingering.
        case closingAfterFlush
        case closed
    }

    /// What one `HTTPRequestParser.feed` returned, as the machine needs it.
    enum ParseResult: Equatable {
        case needMore(inMessage: Bool, expectsContinue: Bool)
        case request(keepAlive: Bool)
        case failure(HTTPRequestParser.Failure)
    }

    enum Action: Equatable {
        case armTimer(milliseconds: UInt64)
        case stopTimer
        /// Answer `Expect: 100-continue`.
        case sendContinue
        /// Hand the request just parsed to the handler.
        case dispatch
        /// Write the handler's response with this `Connection` disposition.
        case writeResponse(keepAlive: Bool)
        /// Write an error response (400, 408, 413, 431); the connection then ends.
        case writeError(status: Int)
        /// Half-close once the written bytes are flushed (the lingering drain starts).
        case shutdownWrite
        case startReading
        case stopReading
        /// Drop bytes parked behind a request: they will never be parsed.
        case releasePending
        /// Parse what is parked (pipelined requests), then read on.
        case resumeParsing
        case closeAfterFlush
        case close
        /// The client did not take a response within the request timeout: close now.
        case closeStalled
        /// The lingering drain ended (`why`, with its bookkeeping for the log): close now.
        case endLingering(LingeringClose, why: LingeringClose.Ending)
    }

    let configuration: Configuration
    private(set) var state: State = .idle
    /// Whether a request has been answered on this connection (idle then uses `idleTimeout`).
    private(set) var hasAnswered = false

    /// Whether the connection is between requests with nothing under way (the oldest of
    /// these are closed first when the process runs out of file descriptors).
    var isIdle: Bool { state == .idle }

    init(configuration: Configuration) {
        self.configuration = configuration
    }

    /// Whether received bytes go to the parser now (else: parked, or discarded once ended).
    var acceptsRequests: Bool {
        switch state {
        case .idle, .receiving: true
        default: false
        }
    }

    /// Whether the last response is written: input is discarded from now on.
    var hasEnded: Bool {
        switch state {
        case .lingering, .closingAfterFlush, .closed: true
        default: false
        }
    }

    // MARK: Events

    mutating func started() -> [Action] {
        [.armTimer(milliseconds: configuration.firstRequestTimeout), .startReading]
    }

    private var idleTimeout: UInt64 {
        hasAnswered ? configuration.idleTimeout : configuration.firstRequestTimeout
    }

    /// The parser consumed bytes and said this.
    mutating func parsed(_ result: ParseResult, now: UInt64) -> [Action] {
        let stopping: Bool
        var actions: [Action] = []
        switch state {
        case .idle:
            stopping = false
            // The first byte of a request starts the request timer.
            actions.append(.armTimer(milliseconds: configuration.requestTimeout))
        case .receiving(let flag):
            stopping = flag
        default:
            return []
        }
        switch result {
        case .needMore(let inMessage, let expectsContinue):
            if expectsContinue { actions.append(.sendContinue) }
            if inMessage {
                state = .receiving(stopping: stopping)
            } else if stopping {
                // No request under way any more and the server is stopping.
                return actions + close()
            } else {
                // Only separators so far: back to idle.
                state = .idle
                actions.append(.armTimer(milliseconds: idleTimeout))
            }
        case .request:
            state = .awaitingResponse(stopping: stopping)
            actions += [.stopTimer, .dispatch]
        case .failure(let failure):
            actions.append(.writeError(status: Self.status(for: failure)))
            actions += end(stopping: stopping, now: now)
        }
        return actions
    }

    /// The handler answered; `keepAlive`: the request allows it and the response does not
    /// close the connection.
    mutating func responded(keepAlive: Bool, now: UInt64) -> [Action] {
        guard case .awaitingResponse(let stopping) = state else { return [] }
        let keep = keepAlive && !stopping
        hasAnswered = true
        if keep {
            state = .sending
            return [.writeResponse(keepAlive: true)]
        }
        // Bytes pipelined after this request are never parsed now; lingering keeps them from
        // turning the close into a reset that could destroy the response.
        return [.writeResponse(keepAlive: false)] + end(stopping: stopping, now: now) + [.releasePending]
    }

    /// The keep-alive response is written; `unsentBytes` of the connection's output have not
    /// reached the kernel yet; `writtenThisTurn`: response bytes written to this connection
    /// since the loop last gave it input (or a turn).
    mutating func responseWritten(unsentBytes: Int, writtenThisTurn: Int = 0) -> [Action] {
        guard state == .sending else { return [] }
        if unsentBytes > configuration.maxUnsentBytes {
            state = .backlogged
            return [.stopReading, .armTimer(milliseconds: configuration.requestTimeout)]
        }
        if writtenThisTurn > configuration.maxUnsentBytes {
            state = .yielding
            return [.stopReading, .armTimer(milliseconds: 1)]
        }
        state = .idle
        return [.armTimer(milliseconds: idleTimeout), .resumeParsing]
    }

    /// Every byte written has reached the kernel.
    mutating func outputDrained() -> [Action] {
        guard state == .backlogged else { return [] }
        state = .idle
        return [.armTimer(milliseconds: idleTimeout), .resumeParsing]
    }

    /// The connection's one timer fired.
    mutating func timerFired(now: UInt64) -> [Action] {
        switch state {
        case .idle:
            return close()
        case .backlogged:
            state = .closed
            return [.stopTimer, .closeStalled]
        case .yielding:
            // A later loop turn: answer what is parked.
            state = .idle
            return [.armTimer(milliseconds: idleTimeout), .resumeParsing]
        case .receiving(let stopping):
            return [.releasePending, .writeError(status: 408)] + end(stopping: stopping, now: now)
        case .lingering(let drain):
            if let ending = drain.check(now: now) { return endLingering(drain, ending) }
            return [.armTimer(milliseconds: drain.timeout(now: now))]
        case .awaitingResponse, .sending, .closingAfterFlush, .closed:
            return []
        }
    }

    /// Bytes arrived after the last response: counted and dropped.
    mutating func discarded(_ count: Int, now: UInt64) -> [Action] {
        guard case .lingering(var drain) = state else { return [] }
        let ending = drain.discarded(count, now: now)
        state = .lingering(drain)
        if let ending { return endLingering(drain, ending) }
        return []
    }

    /// The peer's EOF or a connection error (`onEnd`), or the half-close failed (the peer
    /// is gone).
    mutating func peerClosed() -> [Action] {
        switch state {
        case .closed: return []
        case .lingering(let drain): return endLingering(drain, .peerClosed)
        default: return close()
        }
    }

    /// The half-close failed: the peer is gone, or the stream closed first.
    mutating func shutdownFailed() -> [Action] {
        guard case .lingering(let drain) = state else { return [] }
        return endLingering(drain, .peerClosed)
    }

    /// The server stops: idle and lingering connections close now, busy ones after their
    /// response (without lingering).
    mutating func serverStopping() -> [Action] {
        switch state {
        case .receiving:
            state = .receiving(stopping: true)
            return []
        case .awaitingResponse:
            state = .awaitingResponse(stopping: true)
            return []
        case .closed:
            return []
        case .idle, .lingering, .closingAfterFlush, .sending, .backlogged, .yielding:
            return close()
        }
    }

    /// The stream is closed (its close callback).
    mutating func streamClosed() {
        state = .closed
    }

    // MARK: Helpers

    static func status(for failure: HTTPRequestParser.Failure) -> Int {
        switch failure {
        case .malformed, .strictHead: 400
        case .headersTooLarge: 431
        case .bodyTooLarge: 413
        }
    }

    /// The response that ends the connection is written: linger, or (server stopping)
    /// close after the flush.
    private mutating func end(stopping: Bool, now: UInt64) -> [Action] {
        if stopping {
            state = .closingAfterFlush
            return [.stopReading, .stopTimer, .closeAfterFlush]
        }
        let drain = LingeringClose(bounds: configuration.linger, now: now)
        state = .lingering(drain)
        return [.shutdownWrite, .startReading, .armTimer(milliseconds: drain.timeout(now: now))]
    }

    private mutating func close() -> [Action] {
        state = .closed
        return [.stopTimer, .close]
    }

    private mutating func endLingering(_ drain: LingeringClose, _ why: LingeringClose.Ending) -> [Action] {
        state = .closed
        return [.stopTimer, .endLingering(drain, why: why)]
    }
}
