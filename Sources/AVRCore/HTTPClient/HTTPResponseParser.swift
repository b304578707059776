/// Why a response could not be parsed; text is made only where it is logged (`description`).
package enum HTTPResponseFailure: Error, Equatable, Sendable, CustomStringConvertible {
    /// llhttp rejected the bytes (its error code and reason).
    case malformed(code: Int32, reason: String)
    case headersTooLarge(limit: Int)
    /// The body sink (`onBody`) refused a chunk.
    case bodyTooLarge
    /// The peer closed before sending any byte of a response.
    case closedBeforeResponse
    /// The peer closed in the middle of a response.
    case closedMidResponse
    /// `feed` or `finishAtEOF` was called from the parser's own callback (`onHead`/`onBody`).
    case reentered

    package var description: String {
        switch self {
        case .malformed(_, let reason): reason
        case .headersTooLarge(let limit): "response headers exceed \(limit) bytes"
        case .bodyTooLarge: "response body too large"
        case .closedBeforeResponse: "connection closed before any response"
        case .closedMidResponse: "connection closed in the middle of the response"
        case .reentered: "response parser re-entered from its own callback"
        }
    }
}

/// Incremental HTTP/1.1 response parsing on llhttp (through `LLHTTPParser`). The body is
/// streamed to `onBody` (the pooled client accumulates it with a bound; the streaming STS
/// client plays it).
///
/// `onHead` and `onBody` run inside `feed`: they may call `reset()` (it takes effect when
/// `feed` returns, which then reports `.needMore`: the rest of that input is dropped), but
/// a `feed` or `finishAtEOF` from them is refused with `.reentered`.
final class HTTPResponseParser {
    enum Outcome: Equatable {
        case needMore
        /// The response is complete; `consumed` bytes were used.
        case complete(consumed: Int)
        case failure(HTTPResponseFailure)
    }

    private var parser: LLHTTPParser!
    private var head: HTTPHeaderCollector
    private var limitFailure: HTTPResponseFailure?
    private var completed = false

    private(set) var status = 0
    var headers: [(name: String, value: String)] { head.headers }
    private(set) var keepAlive = false
    /// True once any byte of the response was parsed (a reused connection that fails
    /// before this may be retried safely).
    private(set) var sawBytes = false

    var onHead: (() -> Void)?
    var onBody: ((UnsafeRawBufferPointer) -> Bool)?

    init(maxHeaderBytes: Int = 16 * 1024) {
        head = HTTPHeaderCollector(limit: maxHeaderBytes)
        parser = LLHTTPParser(.response, handler: self)
    }

    /// Prepares for the next response on a kept-alive connection.
    func reset() {
        parser.reset()
        status = 0
        head.reset()
        limitFailure = nil
        completed = false
        sawBytes = false
        keepAlive = false
    }

    func feed(_ bytes: UnsafeRawBufferPointer) -> Outcome {
        guard bytes.count > 0 else { return .needMore }
        guard !parser.isExecuting else { return .failure(.reentered) }
        sawBytes = true
        switch parser.execute(bytes) {
        case .ok, .resetDuringExecute:
            return .needMore
        case .paused(let consumed):
            return .complete(consumed: consumed)
        case .failed(let error):
            return .failure(limitFailure ?? .malformed(code: error.code, reason: error.reason))
        case .reentered:
            return .failure(.reentered)
        }
    }

    /// The peer closed: completes a close-delimited body, or reports a truncated response.
    func finishAtEOF() -> Outcome {
        guard !parser.isExecuting else { return .failure(.reentered) }
        if completed { return .complete(consumed: 0) }
        let result = parser.finish()
        if result == .ok && completed { return .complete(consumed: 0) }
        if case .paused = result { return .complete(consumed: 0) }
        return .failure(sawBytes ? .closedMidResponse : .closedBeforeResponse)
    }

    func header(_ name: String) -> String? { head.first(name) }

    /// `.stop` (and the failure recorded) once the head is over its limit.
    private func headWithinLimit(_ withinLimit: Bool) -> LLHTTPParser.Verdict {
        if withinLimit { return .proceed }
        limitFailure = .headersTooLarge(limit: head.limit)
        return .stop
    }
}

extension HTTPResponseParser: LLHTTPHandler {
    func messageBegan(_ parser: LLHTTPParser) -> LLHTTPParser.Verdict { .proceed }

    func url(_ data: UnsafeRawBufferPointer, _ parser: LLHTTPParser) -> LLHTTPParser.Verdict { .proceed }

    func status(_ data: UnsafeRawBufferPointer, _ parser: LLHTTPParser) -> LLHTTPParser.Verdict {
        headWithinLimit(head.count(data.count))
    }

    func headerField(_ data: UnsafeRawBufferPointer, _ parser: LLHTTPParser) -> LLHTTPParser.Verdict {
        headWithinLimit(head.field(data))
    }

    func headerValue(_ data: UnsafeRawBufferPointer, _ parser: LLHTTPParser) -> LLHTTPParser.Verdict {
        headWithinLimit(head.value(data))
    }

    func headersCompleted(_ parser: LLHTTPParser) -> LLHTTPParser.Verdict {
        head.finish()
        status = parser.statusCode
        onHead?()
        return .proceed
    }

    func body(_ data: UnsafeRawBufferPointer, _ parser: LLHTTPParser) -> LLHTTPParser.Verdict {
        if let onBody, !onBody(data) {
            limitFailure = .bodyTooLarge
            return .stop
        }
        return .proceed
    }

    func messageCompleted(_ parser: LLHTTPParser) -> LLHTTPParser.Verdict {
        keepAlive = parser.shouldKeepAlive
        completed = true
        return .pause
    }
}
