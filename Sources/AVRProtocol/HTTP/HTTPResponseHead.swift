/// Writes HTTP/1.1 responses for the HTTP service: small, complete, `Content-Length`
/// framed answers (the service never streams), with `Connection` stating whether the
/// connection stays open.
package enum HTTPResponseHead {
    /// Status line, headers and body in one array, ready for one write:
    ///
    ///     HTTP/1.1 200 OK\r\n
    ///     Content-Type: application/json\r\n
    ///     Content-Length: 15\r\n
    ///     Connection: keep-alive\r\n
    ///     <extraHeaders>\r\n
    ///     \r\n
    ///     <body>
    ///
    /// `reason` nil uses the standard phrase. A 1xx answer (e.g. `100 Continue`) is the
    /// status line and `extraHeaders` only; 204 and 304 carry no body and no length.
    /// CR, LF and NUL in `reason` or in header names and values are replaced by spaces, so
    /// no value can ever inject a header. `omittingBody`: the answer to a HEAD request, the
    /// same head (with the Content-Length of `body`) and no body.
    package static func serialize(
        status: Int,
        reason: String? = nil,
        contentType: String?,
        body: [UInt8],
        keepAlive: Bool,
        extraHeaders: [(String, String)] = [],
        omittingBody: Bool = false
    ) -> [UInt8] {
        precondition((100...999).contains(status), "HTTP status must have three digits")
        var bytes: [UInt8] = []
        bytes.reserveCapacity(128 + body.count)
        appendStatusLine(status: status, reason: reason, to: &bytes)
        if status < 200 {
            appendHeaders(extraHeaders, to: &bytes)
            bytes.append(contentsOf: "\r\n".utf8)
            return bytes
        }
        let hasBody = status != 204 && status != 304
        if let contentType, hasBody { appendHeader("Content-Type", contentType, to: &bytes) }
        if hasBody { appendHeader("Content-Length", String(body.count), to: &bytes) }
        appendHeader("Connection", keepAlive ? "keep-alive" : "close", to: &bytes)
        appendHeaders(extraHeaders, to: &bytes)
        bytes.append(contentsOf: "\r\n".utf8)
        if hasBody && !omittingBody { bytes.append(contentsOf: body) }
        return bytes
    }

    /// The standard reason phrase for the statuses avr-core sends; `Unknown` otherwise.
    package static func reasonPhrase(for status: Int) -> String {
        switch status {
        case 100: "Continue"
        case 101: "Switching Protocols"
        case 200: "OK"
        case 204: "No Content"
        case 400: "Bad Request"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 408: "Request Timeout"
        case 411: "Length Required"
        case 413: "Content Too Large"
        case 415: "Unsupported Media Type"
        case 431: "Request Header Fields Too Large"
        case 500: "Internal Server Error"
        case 501: "Not Implemented"
        case 502: "Bad Gateway"
        case 503: "Service Unavailable"
        case 504: "Gateway Timeout"
        case 505: "HTTP Version Not Supported"
        default: "Unknown"
        }
    }

    private static func appendStatusLine(status: Int, reason: String?, to bytes: inout [UInt8]) {
        bytes.append(contentsOf: "HTTP/1.1 ".utf8)
        bytes.append(contentsOf: String(status).utf8)
        bytes.append(UInt8(ascii: " "))
        appendSanitized(reason ?? reasonPhrase(for: status), to: &bytes)
        bytes.append(contentsOf: "\r\n".utf8)
    }

    private static func appendHeaders(_ headers: [(String, String)], to bytes: inout [UInt8]) {
        for (name, value) in headers { appendHeader(name, value, to: &bytes) }
    }

    private static func appendHeader(_ name: String, _ value: String, to bytes: inout [UInt8]) {
        appendSanitized(name, to: &bytes)
        bytes.append(contentsOf: ": ".utf8)
        appendSanitized(value, to: &bytes)
        bytes.append(contentsOf: "\r\n".utf8)
    }

    private static func appendSanitized(_ text: String, to bytes: inout [UInt8]) {
        for byte in text.utf8 {
            bytes.append(byte == 0x0D || byte == 0x0A || byte == 0x00 ? UInt8(ascii: " ") : byte)
        }
    }
}
