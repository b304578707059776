private import CLLHTTP

/// What llhttp hands a parser's user, one method per llhttp callback. Each returns what
/// llhttp should do next.
protocol LLHTTPHandler: AnyObject {
    func messageBegan(_ parser: LLHTTPParser) -> LLHTTPParser.Verdict
    func url(_ data: UnsafeRawBufferPointer, _ parser: LLHTTPParser) -> LLHTTPParser.Verdict
    func status(_ data: UnsafeRawBufferPointer, _ parser: LLHTTPParser) -> LLHTTPParser.Verdict
    func headerField(_ data: UnsafeRawBufferPointer, _ parser: LLHTTPParser) -> LLHTTPParser.Verdict
    func headerValue(_ data: UnsafeRawBufferPointer, _ parser: LLHTTPParser) -> LLHTTPParser.Verdict
    func headersCompleted(_ parser: LLHTTPParser) -> LLHTTPParser.Verdict
    func body(_ data: UnsafeRawBufferPointer, _ parser: LLHTTPParser) -> LLHTTPParser.Verdict
    func messageCompleted(_ parser: LLHTTPParser) -> LLHTTPParser.Verdict
}

/// llhttp's reason for rejecting input: its error code (`llhttp_errno_t`) and message.
struct LLHTTPError: Error, Equatable, Sendable, CustomStringConvertible {
    let code: Int32
    let reason: String
    var description: String { reason }
}

/// The one wrapper of llhttp, for requests and responses alike.
///
/// - One settings scheme: a single callback table for the whole process, allocated once and
///   never freed (llhttp keeps its address); every callback finds its parser through
///   `llhttp_t.data` and forwards to the parser's `handler`.
/// - One ownership rule: the handler owns this parser; `data` points at the parser, which
///   holds a *retained* reference to itself and to its handler for as long as
///   `llhttp_execute` runs, so user code in a callback (`onHead`) that drops the last
///   reference to either cannot free memory llhttp is still using.
/// - A re-entrancy guard: a callback that calls `execute` or `finish` gets `.reentered`
///   and llhttp is not entered again; a `reset` from a callback stops the current run at
///   once and takes effect when `llhttp_execute` has returned (the rest of that input is
///   dropped).
final class LLHTTPParser {
    enum Kind { case request, response }

    /// What a callback tells llhttp: go on, stop with an error, or pause (the message
    /// is complete; `execute` returns `.paused`).
    enum Verdict { case proceed, stop, pause }

    enum Result: Equatable {
        /// Every byte was consumed.
        case ok
        /// A callback paused; `consumed` bytes were used.
        case paused(consumed: Int)
        case failed(LLHTTPError)
        /// Called from one of this parser's own callbacks: rejected, llhttp not entered.
        case reentered
        /// `reset()` was called from a callback; the parser starts afresh, the rest of the
        /// input was dropped.
        case resetDuringExecute
    }

    let kind: Kind
    private let raw: UnsafeMutablePointer<llhttp_t>
    /// The handler owns this parser (no one else holds it), so it outlives it; while
    /// llhttp runs it is retained besides.
    private unowned(unsafe) let handler: any LLHTTPHandler
    private(set) var isExecuting = false
    private var resetRequested = false

    init(_ kind: Kind, handler: any LLHTTPHandler) {
        self.kind = kind
        self.handler = handler
        raw = .allocate(capacity: 1)
        initialise()
    }

    deinit { raw.deallocate() }

    private func initialise() {
        llhttp_init(raw, kind == .request ? HTTP_REQUEST : HTTP_RESPONSE, LLHTTPSettings.shared.raw)
        raw.pointee.data = nil
    }

    /// Parses `bytes` (non-empty).
    func execute(_ bytes: UnsafeRawBufferPointer) -> Result {
        guard !isExecuting else { return .reentered }
        guard let start = bytes.baseAddress, bytes.count > 0 else { return .ok }
        let base = start.assumingMemoryBound(to: CChar.self)
        let status = running { llhttp_execute(raw, base, bytes.count) }
        if resetRequested { return completeReset() }
        switch status {
        case HPE_OK: return .ok
        case HPE_PAUSED: return .paused(consumed: llhttp_get_error_pos(raw)! - base)
        default: return .failed(error(status))
        }
    }

    /// The input ended (the peer closed): completes a message whose end is the end of the
    /// connection. `.ok` also when no message was under way.
    func finish() -> Result {
        guard !isExecuting else { return .reentered }
        let status = running { llhttp_finish(raw) }
        if resetRequested { return completeReset() }
        switch status {
        case HPE_OK: return .ok
        case HPE_PAUSED: return .paused(consumed: 0)
        default: return .failed(error(status))
        }
    }

    /// Resumes after `.paused` (the next message on the connection).
    func resume() {
        guard !isExecuting else { return }
        llhttp_resume(raw)
    }

    /// Starts afresh (the next message on a kept-alive connection). From a callback it is
    /// deferred until `llhttp_execute` returns.
    func reset() {
        if isExecuting {
            resetRequested = true
        } else {
            initialise()
        }
    }

    // MARK: Message facts, valid in and after `headersCompleted`

    var statusCode: Int { Int(raw.pointee.status_code) }

    var method: String {
        String(cString: llhttp_method_name(llhttp_method_t(UInt32(raw.pointee.method))))
    }

    /// The Content-Length the headers declared, if any.
    var contentLength: UInt64? {
        (raw.pointee.flags & UInt16(F_CONTENT_LENGTH.rawValue)) != 0 ? raw.pointee.content_length : nil
    }

    /// Valid in `messageCompleted`.
    var shouldKeepAlive: Bool { llhttp_should_keep_alive(raw) != 0 }

    // MARK: Internals

    private func running(_ body: () -> llhttp_errno_t) -> llhttp_errno_t {
        isExecuting = true
        let retainedSelf = Unmanaged.passRetained(self)
        raw.pointee.data = retainedSelf.toOpaque()
        let status = withExtendedLifetime(handler) { body() }
        raw.pointee.data = nil
        isExecuting = false
        retainedSelf.release()
        return status
    }

    private func completeReset() -> Result {
        resetRequested = false
        initialise()
        return .resetDuringExecute
    }

    private func error(_ status: llhttp_errno_t) -> LLHTTPError {
        LLHTTPError(code: Int32(status.rawValue),
                    reason: llhttp_get_error_reason(raw).map { String(cString: $0) } ?? String(cString: llhttp_errno_name(status)))
    }

    fileprivate static func dispatch(_ raw: UnsafeMutablePointer<llhttp_t>?,
                                     _ event: (any LLHTTPHandler, LLHTTPParser) -> Verdict) -> Int32 {
        let parser = Unmanaged<LLHTTPParser>.fromOpaque(raw!.pointee.data).takeUnretainedValue()
        // After a reset from a callback, nothing more reaches the handler in this run.
        if parser.resetRequested { return -1 }
        let verdict = event(parser.handler, parser)
        if parser.resetRequested { return -1 }
        switch verdict {
        case .proceed: return 0
        case .stop: return -1
        case .pause: return Int32(HPE_PAUSED.rawValue)
        }
    }
}

@available(*, unavailable)
extension LLHTTPParser: Sendable {}

/// The callback table every `LLHTTPParser` shares.
private final class LLHTTPSettings: @unchecked Sendable {
    static let shared = LLHTTPSettings()
    let raw: UnsafeMutablePointer<llhttp_settings_t>

    private init() {
        raw = .allocate(capacity: 1)
        llhttp_settings_init(raw)
        raw.pointee.on_message_begin = { LLHTTPParser.dispatch($0) { $0.messageBegan($1) } }
        raw.pointee.on_url = { p, at, count in
            LLHTTPParser.dispatch(p) { $0.url(UnsafeRawBufferPointer(start: at, count: count), $1) }
        }
        raw.pointee.on_status = { p, at, count in
            LLHTTPParser.dispatch(p) { $0.status(UnsafeRawBufferPointer(start: at, count: count), $1) }
        }
        raw.pointee.on_header_field = { p, at, count in
            LLHTTPParser.dispatch(p) { $0.headerField(UnsafeRawBufferPointer(start: at, count: count), $1) }
        }
        raw.pointee.on_header_value = { p, at, count in
            LLHTTPParser.dispatch(p) { $0.headerValue(UnsafeRawBufferPointer(start: at, count: count), $1) }
        }
        raw.pointee.on_headers_complete = { LLHTTPParser.dispatch($0) { $0.headersCompleted($1) } }
        raw.pointee.on_body = { p, at, count in
            LLHTTPParser.dispatch(p) { $0.body(UnsafeRawBufferPointer(start: at, count: count), $1) }
        }
        raw.pointee.on_message_complete = { LLHTTPParser.dispatch($0) { $0.messageCompleted($1) } }
    }
}
