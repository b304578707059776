/// Why the server's handshake response was not accepted. `description` is the log line.
package enum WebSocketHandshakeError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A status other than 101, e.g. 404 for a wrong path or 401 for a missing token.
    case refused(status: Int, reason: String)
    /// The head did not end within the size limit.
    case headTooLarge(limit: Int)
    case malformedStatusLine
    case malformedHeader
    case missingUpgrade
    case missingConnectionUpgrade
    case missingAccept
    case acceptMismatch(received: String)
    /// The server accepted an extension or subprotocol we never offered.
    case unsupportedExtension(String)
    case unsupportedSubprotocol(String)

    package var description: String {
        switch self {
        case .refused(let status, let reason):
            return reason.isEmpty ? "handshake refused: HTTP \(status)" : "handshake refused: HTTP \(status) \(reason)"
        case .headTooLarge(let limit): return "handshake response head larger than \(limit) bytes"
        case .malformedStatusLine: return "handshake response has a malformed status line"
        case .malformedHeader: return "handshake response has a malformed header line"
        case .missingUpgrade: return "handshake response lacks 'Upgrade: websocket'"
        case .missingConnectionUpgrade: return "handshake response lacks 'Connection: upgrade'"
        case .missingAccept: return "handshake response lacks Sec-WebSocket-Accept"
        case .acceptMismatch(let received): return "handshake response has a wrong Sec-WebSocket-Accept: \(received)"
        case .unsupportedExtension(let value): return "server chose an extension we did not offer: \(value)"
        case .unsupportedSubprotocol(let value): return "server chose a subprotocol we did not offer: \(value)"
        }
    }
}

/// The server's answer to the handshake, once validated.
package struct WebSocketHandshakeResponse: Sendable, Equatable {
    /// Header fields in arrival order, names as sent.
    package var headers: [(name: String, value: String)]
    /// Bytes of the head (status line through the blank line) that were consumed.
    package var headLength: Int

    package static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.headLength == rhs.headLength && lhs.headers.elementsEqual(rhs.headers) { $0 == $1 }
    }
}

/// Reads the handshake response from the connection's read buffer as bytes arrive. It
/// consumes only the head: bytes after the blank line are the server's first frames and stay
/// in the buffer for the frame decoder.
package struct WebSocketHandshakeResponseParser: Sendable {
    package static let defaultMaxHeadLength = 8 * 1024

    package let expectedAccept: String
    package let maxHeadLength: Int
    /// How far the search for `\r\n\r\n` has got, so bytes are not rescanned on each read.
    private var scanned = 0

    /// - Parameter key: the `Sec-WebSocket-Key` that was sent.
    package init(key: String, maxHeadLength: Int = WebSocketHandshakeResponseParser.defaultMaxHeadLength) {
        self.expectedAccept = WebSocketHandshake.acceptValue(forKey: key)
        self.maxHeadLength = maxHeadLength
    }

    /// `nil` while the head is incomplete; otherwise the validated response, with the head
    /// consumed from `buffer`.
    package mutating func parse(_ buffer: inout ByteBuffer) throws(WebSocketHandshakeError) -> WebSocketHandshakeResponse? {
        let headEnd: Int? = buffer.withReadableBytes { bytes in
            let limit = min(bytes.count, maxHeadLength)
            var index = max(scanned - 3, 0)
            while index + 4 <= limit {
                if bytes[index] == 0x0D && bytes[index + 1] == 0x0A && bytes[index + 2] == 0x0D && bytes[index + 3] == 0x0A {
                    return index + 4
                }
                index += 1
            }
            scanned = limit
            return nil
        }
        guard let headEnd else {
            if buffer.readableBytes >= maxHeadLength { throw .headTooLarge(limit: maxHeadLength) }
            return nil
        }
        let head = Array(buffer.bytes(at: 0, count: headEnd - 4))
        let response = try validate(head: head, headLength: headEnd)
        buffer.moveReaderIndex(forwardBy: headEnd)
        scanned = 0
        return response
    }

    private func validate(head: [UInt8], headLength: Int) throws(WebSocketHandshakeError) -> WebSocketHandshakeResponse {
        var lines = head.split(separator: 0x0A, omittingEmptySubsequences: false).map { line in
            line.last == 0x0D ? line.dropLast() : line
        }
        guard !lines.isEmpty else { throw .malformedStatusLine }
        let status = try parseStatusLine(String(decoding: lines.removeFirst(), as: UTF8.self))
        guard status.code == 101 else { throw .refused(status: status.code, reason: status.reason) }

        var headers: [(name: String, value: String)] = []
        for line in lines {
            // Obsolete line folding and lines without a colon are both malformed.
            guard let first = line.first, first != 0x20, first != 0x09,
                  let colon = line.firstIndex(of: UInt8(ascii: ":")), colon != line.startIndex
            else { throw .malformedHeader }
            let name = String(decoding: line[line.startIndex..<colon], as: UTF8.self)
            guard !name.utf8.contains(where: { $0 == 0x20 || $0 == 0x09 }) else { throw .malformedHeader }
            let value = String(decoding: line[(colon + 1)...], as: UTF8.self)
            headers.append((name, trimmed(value)))
        }

        func values(_ name: String) -> [String] {
            headers.filter { $0.name.lowercased() == name }.map(\.value)
        }
        guard values("upgrade").contains(where: { $0.lowercased() == "websocket" }) else { throw .missingUpgrade }
        let connectionTokens = values("connection").flatMap { $0.split(separator: ",") }.map { trimmed(String($0)).lowercased() }
        guard connectionTokens.contains("upgrade") else { throw .missingConnectionUpgrade }
        let accepts = values("sec-websocket-accept")
        guard let accept = accepts.first else { throw .missingAccept }
        guard accepts.count == 1, accept == expectedAccept else { throw .acceptMismatch(received: accepts.joined(separator: ", ")) }
        if let extensions = values("sec-websocket-extensions").first(where: { !$0.isEmpty }) {
            throw .unsupportedExtension(extensions)
        }
        if let subprotocol = values("sec-websocket-protocol").first(where: { !$0.isEmpty }) {
            throw .unsupportedSubprotocol(subprotocol)
        }
        return WebSocketHandshakeResponse(headers: headers, headLength: headLength)
    }

    /// `HTTP/1.1 101 Switching Protocols` → (101, "Switching Protocols").
    private func parseStatusLine(_ line: String) throws(WebSocketHandshakeError) -> (code: Int, reason: String) {
        let parts = line.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), parts[1].utf8.count == 3,
              parts[1].utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let code = Int(parts[1])
        else { throw .malformedStatusLine }
        return (code, parts.count == 3 ? String(parts[2]) : "")
    }

    private func trimmed(_ value: String) -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" }
        guard let start = value.firstIndex(where: { !isSpace($0) }) else { return "" }
        let end = value.lastIndex(where: { !isSpace($0) })!
        return String(value[start...end])
    }
}
