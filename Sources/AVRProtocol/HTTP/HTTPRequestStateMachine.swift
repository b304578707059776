/// The life of one outbound HTTP/1.1 request on a connected stream, as events in and actions
/// out, without I/O and without a clock: every event that needs the time is given `now`
/// (milliseconds, any monotonic origin). `HTTPRequestTask` (AVRCore) is its shell for the
/// webhook client, the pipeline modules and the streaming-HTTP STS.
///
/// The request side and the response side move independently, so a response may begin (and
/// even end) while a streaming request body is still being written:
///
///     idle ─start→ running(request: streaming ⇄ paused │ ended,
///                          response: waitingForHead → receivingBody) → finished │ failed
///
/// Bounds, each optional (`Limits`): the wait for the response head from the moment the
/// request head is written (`headTimeout`); each silence within the response body
/// (`responseIdleTimeout`); and, for a streaming body, how long request bytes may wait unsent
/// without the peer taking any of them (`requestStallTimeout`). Past `maxPendingBytes` unsent,
/// body parts are dropped (counted) rather than queued, so a peer that stops reading costs
/// that much memory at most; the stall bound then ends the request.
///
/// Reads and writes only note the time; the shell runs one timer, asks `check` when it
/// fires and re-arms it for what `check` says is left.
package struct HTTPRequestStateMachine: Sendable {
    package enum Body: Equatable, Sendable {
        /// Written with the head (Content-Length).
        case fixed
        /// Written part by part after the head (chunked), ended by `endBody`.
        case streaming
    }

    package struct Limits: Equatable, Sendable {
        package var headTimeout: UInt64?
        package var responseIdleTimeout: UInt64?
        package var requestStallTimeout: UInt64?
        package var maxPendingBytes: Int

        package static let defaultMaxPendingBytes = 256 * 1024

        package init(headTimeout: UInt64? = nil, responseIdleTimeout: UInt64? = nil,
                     requestStallTimeout: UInt64? = nil, maxPendingBytes: Int = Self.defaultMaxPendingBytes) {
            self.headTimeout = headTimeout
            self.responseIdleTimeout = responseIdleTimeout
            self.requestStallTimeout = requestStallTimeout
            self.maxPendingBytes = maxPendingBytes
        }
    }

    /// Why the request failed, as far as the machine knows it (the shell adds the details it
    /// holds: the stream's error, the parser's reason).
    package enum Failure: Error, Equatable, Sendable {
        case headTimeout(milliseconds: UInt64)
        case responseIdle(milliseconds: UInt64)
        case requestStalled(milliseconds: UInt64, pendingBytes: Int)
        case closedBeforeResponse
        case closedMidResponse
        /// The transport reported an error (reset, TLS failure).
        case connectionFailed
        case invalidResponse
    }

    package enum RequestSide: Equatable, Sendable {
        /// `paused`: the last part was dropped (over `maxPendingBytes` unsent).
        case streaming(paused: Bool)
        case ended
    }

    package enum ResponseSide: Equatable, Sendable {
        case waitingForHead
        case receivingBody
    }

    package enum State: Equatable, Sendable {
        case idle
        case running(request: RequestSide, response: ResponseSide)
        case finished
        case failed(Failure)
        case cancelled
    }

    package enum Action: Equatable, Sendable {
        case none
        /// Write the request head (with the fixed body); then `check` after `checkAfter` ms
        /// (nil: nothing to time).
        case writeHead(checkAfter: UInt64?)
        case writeBodyPart
        /// Do not write this part; `dropped` so far (the shell logs as it sees fit).
        case dropBodyPart(dropped: Int)
        /// Write the last chunk.
        case writeLastChunk
        case deliverHead
        case deliverBody
        /// The response is complete. `reuseConnection`: the peer keeps it alive and the
        /// request was written whole, so another request may use it.
        case succeed(reuseConnection: Bool)
        /// Close the connection and report the failure.
        case fail(Failure)
        /// Call `check` again after this many ms.
        case checkAfter(UInt64)
    }

    package private(set) var limits: Limits
    package private(set) var state = State.idle
    /// Body parts dropped so far.
    package private(set) var dropped = 0

    private var headSentAt: UInt64 = 0
    private var lastResponseActivity: UInt64 = 0
    /// The last time the peer took request bytes (or none waited).
    private var lastProgress: UInt64 = 0
    /// The unsent bytes there would be had the peer taken nothing since the last observation.
    private var expectedPending = 0

    package init(limits: Limits) {
        self.limits = limits
    }

    // MARK: Request side

    /// Connected: the head (and a fixed body) is to be written now.
    package mutating func start(body: Body, now: UInt64) -> Action {
        guard case .idle = state else { return .none }
        state = .running(request: body == .fixed ? .ended : .streaming(paused: false), response: .waitingForHead)
        headSentAt = now
        lastResponseActivity = now
        lastProgress = now
        expectedPending = 0
        return .writeHead(checkAfter: nextCheck(now: now, pendingBytes: 0))
    }

    /// One part of a streaming body, `bytes` long, while `pendingBytes` wait unsent.
    package mutating func bodyPart(bytes: Int, pendingBytes: Int, now: UInt64) -> Action {
        guard case .running(.streaming, let response) = state, bytes > 0 else { return .none }
        observe(pendingBytes: pendingBytes, now: now)
        guard pendingBytes <= limits.maxPendingBytes else {
            dropped += 1
            state = .running(request: .streaming(paused: true), response: response)
            return .dropBodyPart(dropped: dropped)
        }
        state = .running(request: .streaming(paused: false), response: response)
        expectedPending = pendingBytes + bytes
        return .writeBodyPart
    }

    /// Every byte written has reached the kernel.
    package mutating func drained(now: UInt64) -> Action {
        guard case .running(.streaming, let response) = state else { return .none }
        observe(pendingBytes: 0, now: now)
        state = .running(request: .streaming(paused: false), response: response)
        return .none
    }

    /// The streaming body is complete.
    package mutating func endBody() -> Action {
        guard case .running(.streaming, let response) = state else { return .none }
        state = .running(request: .ended, response: response)
        return .writeLastChunk
    }

    private mutating func observe(pendingBytes: Int, now: UInt64) {
        if pendingBytes == 0 || pendingBytes < expectedPending { lastProgress = now }
        expectedPending = pendingBytes
    }

    // MARK: Response side

    package mutating func responseHead(now: UInt64) -> Action {
        guard case .running(let request, .waitingForHead) = state else { return .none }
        state = .running(request: request, response: .receivingBody)
        lastResponseActivity = now
        return .deliverHead
    }

    package mutating func responseBody(now: UInt64) -> Action {
        guard case .running(_, .receivingBody) = state else { return .none }
        lastResponseActivity = now
        return .deliverBody
    }

    /// The parser found the end of the response (Content-Length or last chunk).
    package mutating func responseComplete(keepAlive: Bool) -> Action {
        guard case .running(let request, _) = state else { return .none }
        state = .finished
        return .succeed(reuseConnection: keepAlive && request == .ended)
    }

    package mutating func responseInvalid() -> Action {
        fail(.invalidResponse)
    }

    /// The peer ended the connection. `completeAtEOF`: the parser takes the end as the end of
    /// a close-delimited body; `transportError`: the stream reported an error;
    /// `sawResponseBytes`: any byte of a response came.
    package mutating func peerClosed(completeAtEOF: Bool, transportError: Bool, sawResponseBytes: Bool) -> Action {
        guard case .running = state else { return .none }
        if completeAtEOF && !transportError {
            state = .finished
            return .succeed(reuseConnection: false)
        }
        if transportError { return fail(.connectionFailed) }
        return fail(sawResponseBytes ? .closedMidResponse : .closedBeforeResponse)
    }

    /// The request's owner gives up on it: no callback follows.
    package mutating func cancel() {
        if case .running = state { state = .cancelled }
        if case .idle = state { state = .cancelled }
    }

    /// Bounds each silence of the response body from now on, whatever `Limits` said: for a
    /// streaming request answered with an error status whose body is still awaited.
    package mutating func boundResponseIdle(_ timeout: UInt64, now: UInt64, pendingBytes: Int) -> Action {
        guard case .running(_, .receivingBody) = state else { return .none }
        limits.responseIdleTimeout = timeout
        lastResponseActivity = now
        return nextCheck(now: now, pendingBytes: pendingBytes).map(Action.checkAfter) ?? .none
    }

    // MARK: Time

    /// The timer fired: fail on a bound that has passed, else say when to look again.
    package mutating func check(now: UInt64, pendingBytes: Int) -> Action {
        guard case .running(let request, let response) = state else { return .none }
        if case .streaming = request { observe(pendingBytes: pendingBytes, now: now) }
        if let timeout = limits.headTimeout, response == .waitingForHead, now &- headSentAt >= timeout {
            return fail(.headTimeout(milliseconds: timeout))
        }
        if let timeout = limits.responseIdleTimeout, response == .receivingBody, now &- lastResponseActivity >= timeout {
            return fail(.responseIdle(milliseconds: timeout))
        }
        if let timeout = limits.requestStallTimeout, case .streaming = request, pendingBytes > 0,
           now &- lastProgress >= timeout {
            return fail(.requestStalled(milliseconds: timeout, pendingBytes: pendingBytes))
        }
        return nextCheck(now: now, pendingBytes: pendingBytes).map(Action.checkAfter) ?? .none
    }

    /// The soonest a bound may pass, from `now`; nil when nothing is timed.
    private func nextCheck(now: UInt64, pendingBytes: Int) -> UInt64? {
        guard case .running(let request, let response) = state else { return nil }
        var next: UInt64?
        func consider(_ remaining: UInt64) { next = min(next ?? remaining, remaining) }
        if let timeout = limits.headTimeout, response == .waitingForHead {
            consider(timeout - min(timeout, now &- headSentAt))
        }
        if let timeout = limits.responseIdleTimeout, response == .receivingBody {
            consider(timeout - min(timeout, now &- lastResponseActivity))
        }
        if let timeout = limits.requestStallTimeout, case .streaming = request {
            // Nothing waits unsent: the stall could begin with the next part; look again then.
            consider(pendingBytes > 0 ? timeout - min(timeout, now &- lastProgress) : timeout)
        }
        return next.map { max($0, 1) }
    }

    private mutating func fail(_ failure: Failure) -> Action {
        guard case .running = state else { return .none }
        state = .failed(failure)
        return .fail(failure)
    }
}

/// HTTP/1.1 chunked transfer coding for a request body: one chunk per part, appended to a
/// buffer the caller reuses (no allocation once it has grown), and the last chunk.
package enum HTTPChunkedEncoding {
    /// `0\r\n\r\n`: the end of a chunked body (no trailers).
    package static let lastChunk: [UInt8] = Array("0\r\n\r\n".utf8)

    /// Appends `<size in hex>\r\n<bytes>\r\n`; nothing for an empty part (which would end the body).
    package static func appendChunk(_ bytes: UnsafeRawBufferPointer, to out: inout [UInt8]) {
        guard bytes.count > 0 else { return }
        let value = bytes.count
        var shift = (Int.bitWidth - value.leadingZeroBitCount + 3) / 4 * 4
        while shift > 0 {
            shift -= 4
            let digit = UInt8((value >> shift) & 0xF)
            out.append(digit < 10 ? 48 + digit : 87 + digit)
        }
        out.append(13)
        out.append(10)
        out.append(contentsOf: bytes)
        out.append(13)
        out.append(10)
    }
}
