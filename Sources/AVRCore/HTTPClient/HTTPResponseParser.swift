private import CLLHTTP

/// Incremental HTTP/1.1 response parsing on llhttp. The body is streamed to `onBody`
/// (the pooled client accumulates it with a bound; the streaming STS client plays it).
final class HTTPResponseParser {
    enum Outcome: Equatable {
        case needMore
        /// The response is complete; `consumed` bytes were used.
        case complete(consumed: Int)
        case failure(String)
    }

    private let parser: UnsafeMutablePointer<llhttp_t>
    private let settings: UnsafeMutablePointer<llhttp_settings_t>
    private let maxHeaderBytes: Int
    private var headerBytes = 0
    private var field: [UInt8] = []
    private var value: [UInt8] = []
    private var inValue = false
    private var limitError: String?
    private var completed = false

    private(set) var status = 0
    private(set) var headers: [(name: String, value: String)] = []
    private(set) var keepAlive = false
    /// True once any byte of the response was parsed (a reused connection that fails
    /// before this may be retried safely).
    private(set) var sawBytes = false

    var onHead: (() -> Void)?
    var onBody: ((UnsafeRawBufferPointer) -> Bool)?

    init(maxHeaderBytes: Int = 16 * 1024) {
        self.maxHeaderBytes = maxHeaderBytes
        parser = .allocate(capacity: 1)
        settings = .allocate(capacity: 1)
        llhttp_settings_init(settings)
        settings.pointee.on_header_field = { HTTPResponseParser.from($0).headerData(UnsafeRawBufferPointer(start: $1, count: $2), isValue: false) }
        settings.pointee.on_header_value = { HTTPResponseParser.from($0).headerData(UnsafeRawBufferPointer(start: $1, count: $2), isValue: true) }
        settings.pointee.on_status = { HTTPResponseParser.from($0).countHeader($2) ? 0 : -1 }
        settings.pointee.on_headers_complete = { HTTPResponseParser.from($0).headersCompleted() }
        settings.pointee.on_body = { HTTPResponseParser.from($0).bodyData(UnsafeRawBufferPointer(start: $1, count: $2)) }
        settings.pointee.on_message_complete = { HTTPResponseParser.from($0).messageCompleted() }
        llhttp_init(parser, HTTP_RESPONSE, settings)
        parser.pointee.data = Unmanaged.passUnretained(self).toOpaque()
    }

    deinit {
        parser.deallocate()
        settings.deallocate()
    }

    /// Prepares for the next response on a kept-alive connection.
    func reset() {
        llhttp_init(parser, HTTP_RESPONSE, settings)
        parser.pointee.data = Unmanaged.passUnretained(self).toOpaque()
        status = 0
        headers = []
        headerBytes = 0
        field = []
        value = []
        inValue = false
        limitError = nil
        completed = false
        sawBytes = false
        keepAlive = false
    }

    func feed(_ bytes: UnsafeRawBufferPointer) -> Outcome {
        guard bytes.count > 0 else { return .needMore }
        sawBytes = true
        let base = bytes.baseAddress!.assumingMemoryBound(to: CChar.self)
        let result = llhttp_execute(parser, base, bytes.count)
        switch result {
        case HPE_OK:
            return .needMore
        case HPE_PAUSED:
            let consumed = llhttp_get_error_pos(parser)! - base
            return .complete(consumed: consumed)
        default:
            return .failure(limitError ?? llhttp_get_error_reason(parser).map { String(cString: $0) } ?? "invalid HTTP response")
        }
    }

    /// The peer closed: completes a close-delimited body, or reports a truncated response.
    func finishAtEOF() -> Outcome {
        if completed { return .complete(consumed: 0) }
        let result = llhttp_finish(parser)
        if result == HPE_OK && completed { return .complete(consumed: 0) }
        if result == HPE_PAUSED { return .complete(consumed: 0) }
        return .failure(sawBytes ? "connection closed in the middle of the response" : "connection closed before any response")
    }

    fileprivate static func from(_ parser: UnsafeMutablePointer<llhttp_t>?) -> HTTPResponseParser {
        Unmanaged<HTTPResponseParser>.fromOpaque(parser!.pointee.data).takeUnretainedValue()
    }

    fileprivate func countHeader(_ count: Int) -> Bool {
        headerBytes += count
        if headerBytes > maxHeaderBytes {
            limitError = "response headers exceed \(maxHeaderBytes) bytes"
            return false
        }
        return true
    }

    fileprivate func headerData(_ data: UnsafeRawBufferPointer, isValue: Bool) -> Int32 {
        guard countHeader(data.count) else { return -1 }
        if !isValue && inValue { flushHeader() }
        if isValue { inValue = true; value.append(contentsOf: data) } else { field.append(contentsOf: data) }
        return 0
    }

    private func flushHeader() {
        headers.append((String(decoding: field, as: UTF8.self), String(decoding: value, as: UTF8.self)))
        field = []
        value = []
        inValue = false
    }

    fileprivate func headersCompleted() -> Int32 {
        if inValue || !field.isEmpty { flushHeader() }
        status = Int(parser.pointee.status_code)
        onHead?()
        return 0
    }

    fileprivate func bodyData(_ data: UnsafeRawBufferPointer) -> Int32 {
        if let onBody, !onBody(data) {
            limitError = "response body too large"
            return -1
        }
        return 0
    }

    fileprivate func messageCompleted() -> Int32 {
        keepAlive = llhttp_should_keep_alive(parser) != 0
        completed = true
        return Int32(HPE_PAUSED.rawValue)
    }

    func header(_ name: String) -> String? {
        let lower = name.lowercased()
        return headers.first { $0.name.lowercased() == lower }?.value
    }
}
