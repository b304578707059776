private import CLLHTTP

/// Incremental HTTP/1.1 request parsing on llhttp, with size limits.
///
/// llhttp keeps the address of its settings, so they live in a heap block owned by the
/// server (`HTTPParserSettings`) and outlive every parser. Each parser points back to its
/// Swift object through `llhttp_t.data` (unretained: the parser is owned by that object).
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

    private let parser: UnsafeMutablePointer<llhttp_t>
    private let limits: Limits

    private var url: [UInt8] = []
    private var headers: [(name: String, value: String)] = []
    private var field: [UInt8] = []
    private var value: [UInt8] = []
    private var inValue = false
    private var headerBytes = 0
    private var body: [UInt8] = []
    private var completed: HTTPRequest?
    private var failure: Failure?
    /// Set when a request's headers ask for `100 Continue`; the connection answers it.
    private(set) var expectsContinue = false
    /// True between the first byte of a request and its end.
    private(set) var inMessage = false

    init(settings: HTTPParserSettings, limits: Limits) {
        self.limits = limits
        parser = .allocate(capacity: 1)
        llhttp_init(parser, HTTP_REQUEST, settings.raw)
        parser.pointee.data = Unmanaged.passUnretained(self).toOpaque()
    }

    deinit {
        parser.deallocate()
    }

    func feed(_ bytes: UnsafeRawBufferPointer) -> Outcome {
        guard bytes.count > 0 else { return .needMore }
        let base = bytes.baseAddress!.assumingMemoryBound(to: CChar.self)
        let status = llhttp_execute(parser, base, bytes.count)
        switch status {
        case HPE_OK:
            return .needMore
        case HPE_PAUSED:
            let consumed = llhttp_get_error_pos(parser)! - base
            llhttp_resume(parser)
            let request = completed!
            completed = nil
            return .request(request, consumed: consumed)
        default:
            if let failure { return .failure(failure) }
            let reason = llhttp_get_error_reason(parser).map { String(cString: $0) } ?? "parse error"
            return .failure(.malformed(reason))
        }
    }

    /// Clears the "100 Continue" request once answered.
    func continueSent() { expectsContinue = false }

    // MARK: llhttp callbacks (through HTTPParserSettings)

    fileprivate static func from(_ parser: UnsafeMutablePointer<llhttp_t>?) -> HTTPRequestParser {
        Unmanaged<HTTPRequestParser>.fromOpaque(parser!.pointee.data).takeUnretainedValue()
    }

    fileprivate func messageBegan() -> Int32 {
        inMessage = true
        url.removeAll(keepingCapacity: true)
        headers.removeAll(keepingCapacity: true)
        body = []
        headerBytes = 0
        inValue = false
        field.removeAll(keepingCapacity: true)
        value.removeAll(keepingCapacity: true)
        return 0
    }

    fileprivate func countHeaderBytes(_ count: Int) -> Bool {
        headerBytes += count
        if headerBytes > limits.maxHeaderBytes {
            failure = .headersTooLarge
            return false
        }
        return true
    }

    fileprivate func urlData(_ data: UnsafeRawBufferPointer) -> Int32 {
        guard countHeaderBytes(data.count) else { return -1 }
        url.append(contentsOf: data)
        return 0
    }

    fileprivate func fieldData(_ data: UnsafeRawBufferPointer) -> Int32 {
        guard countHeaderBytes(data.count) else { return -1 }
        if inValue { flushHeader() }
        field.append(contentsOf: data)
        return 0
    }

    fileprivate func valueData(_ data: UnsafeRawBufferPointer) -> Int32 {
        guard countHeaderBytes(data.count) else { return -1 }
        inValue = true
        value.append(contentsOf: data)
        return 0
    }

    private func flushHeader() {
        headers.append((String(decoding: field, as: UTF8.self), String(decoding: value, as: UTF8.self)))
        field.removeAll(keepingCapacity: true)
        value.removeAll(keepingCapacity: true)
        inValue = false
    }

    fileprivate func headersCompleted() -> Int32 {
        if inValue || !field.isEmpty { flushHeader() }
        let hasLength = (parser.pointee.flags & UInt16(F_CONTENT_LENGTH.rawValue)) != 0
        if hasLength && parser.pointee.content_length > UInt64(limits.maxBodyBytes) {
            failure = .bodyTooLarge
            return -1
        }
        if let expect = headers.first(where: { $0.name.lowercased() == "expect" }),
           expect.value.lowercased() == "100-continue" {
            expectsContinue = true
        }
        return 0
    }

    fileprivate func bodyData(_ data: UnsafeRawBufferPointer) -> Int32 {
        if body.count + data.count > limits.maxBodyBytes {
            failure = .bodyTooLarge
            return -1
        }
        body.append(contentsOf: data)
        return 0
    }

    fileprivate func messageCompleted() -> Int32 {
        inMessage = false
        expectsContinue = false
        let method = String(cString: llhttp_method_name(llhttp_method_t(UInt32(parser.pointee.method))))
        completed = HTTPRequest(method: method, target: String(decoding: url, as: UTF8.self), headers: headers,
                                body: body, keepAlive: llhttp_should_keep_alive(parser) != 0)
        body = []
        return Int32(HPE_PAUSED.rawValue)
    }
}

/// The llhttp callback table, allocated once per server and never moved.
final class HTTPParserSettings {
    fileprivate let raw: UnsafeMutablePointer<llhttp_settings_t>

    init() {
        raw = .allocate(capacity: 1)
        llhttp_settings_init(raw)
        raw.pointee.on_message_begin = { HTTPRequestParser.from($0).messageBegan() }
        raw.pointee.on_url = { HTTPRequestParser.from($0).urlData(UnsafeRawBufferPointer(start: $1, count: $2)) }
        raw.pointee.on_header_field = { HTTPRequestParser.from($0).fieldData(UnsafeRawBufferPointer(start: $1, count: $2)) }
        raw.pointee.on_header_value = { HTTPRequestParser.from($0).valueData(UnsafeRawBufferPointer(start: $1, count: $2)) }
        raw.pointee.on_headers_complete = { HTTPRequestParser.from($0).headersCompleted() }
        raw.pointee.on_body = { HTTPRequestParser.from($0).bodyData(UnsafeRawBufferPointer(start: $1, count: $2)) }
        raw.pointee.on_message_complete = { HTTPRequestParser.from($0).messageCompleted() }
    }

    deinit { raw.deallocate() }
}
