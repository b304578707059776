/// One HTTP/1.1 request or response, as much as the harness needs: start line, headers with
/// lowercased names, and a `Content-Length` body (no chunked encoding; our peers never use it).
public struct HTTPMessage {
    /// `["POST", "/call", "HTTP/1.1"]` or `["HTTP/1.1", "200", "OK"]`.
    public var startLine: [Substring]
    public var headers: [String: String]
    public var body: [UInt8]
}

public enum HTTPMessageError: Error { case headTooLarge, badContentLength }

/// Splits a byte stream into `HTTPMessage`s (keep-alive: several per connection).
public struct HTTPMessageReader {
    private var queue = ByteQueue()
    private let maxHead = 16384

    public init() {}

    public mutating func append(_ chunk: UnsafeRawBufferPointer) { queue.append(chunk) }

    /// The next complete message, nil when more bytes are needed.
    public mutating func next() throws(HTTPMessageError) -> HTTPMessage? {
        let available = queue.count
        var headEnd = -1
        if available >= 4 {
            for index in 0...(available - 4)
            where queue[index] == 13 && queue[index + 1] == 10 && queue[index + 2] == 13 && queue[index + 3] == 10 {
                headEnd = index
                break
            }
        }
        guard headEnd >= 0 else {
            if available > maxHead { throw .headTooLarge }
            return nil
        }
        let head = String(decoding: (0..<headEnd).map { queue[$0] }, as: UTF8.self)
        var lines = head.split(separator: "\r\n", omittingEmptySubsequences: false)
        let startLine = lines.isEmpty ? [] : lines.removeFirst().split(separator: " ", maxSplits: 2)
        var headers: [String: String] = [:]
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let name = line[..<colon].lowercased()
            let value = line[line.index(after: colon)...].drop { $0 == " " || $0 == "\t" }
            headers[name] = String(value)
        }
        var length = 0
        if let text = headers["content-length"] {
            guard let value = Int(text), value >= 0, value <= 1 << 24 else { throw .badContentLength }
            length = value
        }
        let total = headEnd + 4 + length
        guard available >= total else { return nil }
        let body = ((headEnd + 4)..<total).map { queue[$0] }
        queue.consume(total)
        return HTTPMessage(startLine: startLine, headers: headers, body: body)
    }
}
