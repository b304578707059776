/// Incremental HTTP/1.1 request parsing on llhttp (through `LLHTTPParser`), with size limits.
///
/// After each complete request the parser pauses, so pipelined requests are answered one
/// at a time and in order; `feed` reports how many bytes it consumed.
final class HTTPRequestParser {
    struct Limits {
        var maxHeaderBytes = 16 * 1024
        var maxBodyBytes = 64 * 1024
    }

    enum Failure: Error, Equatable {
        case malformed(String)
        case headersTooLarge
        case bodyTooLarge
    }

    enum Outcome {
        /// Every byte was consumed; no complete request yet.
        case needMore
        /// A request is complete; `consumed` bytes were used, the rest belongs to later requests.
        case request(HTTPRequest, consumed: Int)
        case failure(Failure)
    }

    private var parser: LLHTTPParser!
    private let limits: Limits

    private var url: [UInt8] = []
    private var head: HTTPHeaderCollector
    private var body: [UInt8] = []
    private var completed: HTTPRequest?
    private var failure: Failure?
    /// Set when a request's headers ask for `100 Continue`; the connection answers it.
    private(set) var expectsContinue = false
    /// True between the first byte of a request and its end.
    private(set) var inMessage = false

    init(limits: Limits) {
        self.limits = limits
        head = HTTPHeaderCollector(limit: limits.maxHeaderBytes)
        parser = LLHTTPParser(.request, handler: self)
    }

    func feed(_ bytes: UnsafeRawBufferPointer) -> Outcome {
        guard bytes.count > 0 else { return .needMore }
        switch parser.execute(bytes) {
        case .ok, .resetDuringExecute:
            return .needMore
        case .paused(let consumed):
            parser.resume()
            let request = completed!
            completed = nil
            return .request(request, consumed: consumed)
        case .failed(let error):
            return .failure(failure ?? .malformed(error.reason))
        case .reentered:
            return .failure(.malformed("request parser re-entered from its own callback"))
        }
    }

    /// Clears the "100 Continue" request once answered.
    func continueSent() { expectsContinue = false }

    /// `.stop` (and the failure recorded) once the head is over its limit.
    private func headWithinLimit(_ withinLimit: Bool) -> LLHTTPParser.Verdict {
        if withinLimit { return .proceed }
        failure = .headersTooLarge
        return .stop
    }
}

extension HTTPRequestParser: LLHTTPHandler {
    func messageBegan(_ parser: LLHTTPParser) -> LLHTTPParser.Verdict {
        inMessage = true
        url.removeAll(keepingCapacity: true)
        head.reset()
        body = []
        return .proceed
    }

    func url(_ data: UnsafeRawBufferPointer, _ parser: LLHTTPParser) -> LLHTTPParser.Verdict {
        guard head.count(data.count) else { return headWithinLimit(false) }
        url.append(contentsOf: data)
        return .proceed
    }

    func status(_ data: UnsafeRawBufferPointer, _ parser: LLHTTPParser) -> LLHTTPParser.Verdict { .proceed }

    func headerField(_ data: UnsafeRawBufferPointer, _ parser: LLHTTPParser) -> LLHTTPParser.Verdict {
        headWithinLimit(head.field(data))
    }

    func headerValue(_ data: UnsafeRawBufferPointer, _ parser: LLHTTPParser) -> LLHTTPParser.Verdict {
        headWithinLimit(head.value(data))
    }

    func headersCompleted(_ parser: LLHTTPParser) -> LLHTTPParser.Verdict {
        head.finish()
        if let length = parser.contentLength, length > UInt64(limits.maxBodyBytes) {
            failure = .bodyTooLarge
            return .stop
        }
        if let expect = head.first("expect"), expect.lowercased() == "100-continue" {
            expectsContinue = true
        }
        return .proceed
    }

    func body(_ data: UnsafeRawBufferPointer, _ parser: LLHTTPParser) -> LLHTTPParser.Verdict {
        if body.count + data.count > limits.maxBodyBytes {
            failure = .bodyTooLarge
            return .stop
        }
        body.append(contentsOf: data)
        return .proceed
    }

    func messageCompleted(_ parser: LLHTTPParser) -> LLHTTPParser.Verdict {
        inMessage = false
        expectsContinue = false
        completed = HTTPRequest(method: parser.method, target: String(decoding: url, as: UTF8.self), headers: head.headers,
                                body: body, keepAlive: parser.shouldKeepAlive)
        body = []
        return .pause
    }
}
