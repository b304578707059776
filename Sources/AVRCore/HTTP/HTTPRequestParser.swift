import AVRProtocol

/// Incremental HTTP/1.1 request parsing on llhttp (through `LLHTTPParser`), with size limits.
///
/// After each complete request the parser pauses, so pipelined requests are answered one
/// at a time and in order; `feed` reports how many bytes it consumed.
///
/// Strict (the default): every byte goes through `StrictRequestScanner` before llhttp sees
/// it, which rejects what llhttp 8.1 lets through but another parser may frame differently
/// (bare CR, obs-fold, bad header names, Host missing or repeated, chunk data without its
/// CRLF); llhttp is handed exactly one request's bytes at a time and must end the request
/// where the scanner did, else the request is rejected as ambiguous.
///
/// An absolute-form target (`POST http://host/call HTTP/1.1`) is turned into its path and
/// query, and its authority replaces the Host header (RFC 9112 section 3.2.2).
final class HTTPRequestParser {
    struct Limits {
        var maxHeaderBytes = 16 * 1024
        var maxBodyBytes = 64 * 1024
        /// Run `StrictRequestScanner` in front of llhttp (off only to compare with llhttp alone).
        var strict = true
    }

    enum Failure: Error, Equatable {
        case malformed(String)
        /// Refused by the strict head check (`StrictRequestScanner`), or framed differently
        /// by it and llhttp: bytes a proxy in front may read otherwise (request smuggling).
        case strictHead(String)
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
    private var scanner = StrictRequestScanner()

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
        var input = bytes
        var scannedEnd = false
        if limits.strict {
            switch scanner.scan(bytes) {
            case .needMore: break
            case .requestEnd(let consumed):
                input = UnsafeRawBufferPointer(rebasing: bytes[..<consumed])
                scannedEnd = true
            case .invalid(let violation):
                return .failure(.strictHead(violation.description))
            }
        }
        switch parser.execute(input) {
        case .ok, .resetDuringExecute:
            if scannedEnd { return .failure(.strictHead(Self.ambiguous)) }
            return .needMore
        case .paused(let consumed):
            if limits.strict && (!scannedEnd || consumed != input.count) {
                return .failure(.strictHead(Self.ambiguous))
            }
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

    private static let ambiguous = "request framing is ambiguous (llhttp and the strict scanner end it at different bytes)"

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
        var target = String(decoding: url, as: UTF8.self)
        var headers = head.headers
        if let absolute = AbsoluteFormTarget(target) {
            target = absolute.originForm
            headers.removeAll { $0.name.lowercased() == "host" }
            headers.append(("Host", absolute.authority))
        }
        completed = HTTPRequest(method: parser.method, target: target, headers: headers,
                                body: body, keepAlive: parser.shouldKeepAlive)
        body = []
        return .pause
    }
}
