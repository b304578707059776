import Testing
@testable import AVRProtocol

private func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

@Suite struct HTTPResponseHeadTests {
    @Test func healthAnswer() {
        let bytes = HTTPResponseHead.serialize(
            status: 200, reason: nil, contentType: "application/json", body: Array(#"{"status":"ok"}"#.utf8),
            keepAlive: true)
        #expect(text(bytes) == "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 15\r\nConnection: keep-alive\r\n\r\n{\"status\":\"ok\"}")
    }

    @Test func methodNotAllowedWithAllowAndClose() {
        let body = JSONErrorBody.make("method not allowed")
        let bytes = HTTPResponseHead.serialize(
            status: 405, reason: nil, contentType: "application/json", body: body, keepAlive: false,
            extraHeaders: [("Allow", "POST")])
        #expect(text(bytes) == "HTTP/1.1 405 Method Not Allowed\r\nContent-Type: application/json\r\nContent-Length: 30\r\nConnection: close\r\nAllow: POST\r\n\r\n{\"error\":\"method not allowed\"}")
    }

    /// The answer to HEAD: the head GET would get, Content-Length included, and no body.
    @Test func headAnswerOmitsTheBodyButKeepsItsLength() {
        let body = Array(#"{"status":"ok"}"#.utf8)
        let get = HTTPResponseHead.serialize(status: 200, contentType: "application/json", body: body, keepAlive: true)
        let head = HTTPResponseHead.serialize(status: 200, contentType: "application/json", body: body, keepAlive: true,
                                              omittingBody: true)
        #expect(text(head) == "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 15\r\nConnection: keep-alive\r\n\r\n")
        #expect(get == head + body)
    }

    @Test func emptyBodyWithoutContentType() {
        let bytes = HTTPResponseHead.serialize(status: 404, reason: "Nope", contentType: nil, body: [], keepAlive: true)
        #expect(text(bytes) == "HTTP/1.1 404 Nope\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n")
    }

    @Test func informationalAndBodilessStatuses() {
        #expect(text(HTTPResponseHead.serialize(status: 100, contentType: nil, body: [], keepAlive: true))
            == "HTTP/1.1 100 Continue\r\n\r\n")
        #expect(text(HTTPResponseHead.serialize(status: 204, contentType: "application/json", body: [1], keepAlive: false))
            == "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
    }

    @Test(arguments: [
        (100, "Continue"), (200, "OK"), (400, "Bad Request"), (404, "Not Found"), (405, "Method Not Allowed"),
        (408, "Request Timeout"), (413, "Content Too Large"), (431, "Request Header Fields Too Large"),
        (500, "Internal Server Error"), (503, "Service Unavailable"), (299, "Unknown"),
    ])
    func reasonPhrases(status: Int, phrase: String) {
        #expect(HTTPResponseHead.reasonPhrase(for: status) == phrase)
        let line = text(HTTPResponseHead.serialize(status: status, contentType: nil, body: [], keepAlive: true))
        #expect(line.hasPrefix("HTTP/1.1 \(status) \(phrase)\r\n"))
    }

    @Test func headerInjectionIsDefused() {
        let bytes = HTTPResponseHead.serialize(
            status: 400, reason: "Bad\r\nX-Evil: 1", contentType: "a\nb", body: [], keepAlive: true,
            extraHeaders: [("X-A\r\n", "v\r\nSet-Cookie: x")])
        #expect(text(bytes) == "HTTP/1.1 400 Bad  X-Evil: 1\r\nContent-Type: a b\r\nContent-Length: 0\r\nConnection: keep-alive\r\nX-A  : v  Set-Cookie: x\r\n\r\n")
    }

    @Test func bodyBytesAreCopiedVerbatim() {
        let body: [UInt8] = [0x00, 0xFF, 0x0D, 0x0A]
        let bytes = HTTPResponseHead.serialize(status: 200, contentType: "application/octet-stream", body: body, keepAlive: true)
        #expect(Array(bytes.suffix(4)) == body)
        #expect(text(bytes).contains("Content-Length: 4\r\n"))
    }
}

@Suite struct JSONErrorBodyTests {
    @Test func escapesTheMessage() {
        #expect(text(JSONErrorBody.make("invalid JSON at byte 17: expected ':'"))
            == #"{"error":"invalid JSON at byte 17: expected ':'"}"#)
        #expect(text(JSONErrorBody.make("bad \"uuid\"\\\n\u{1}é")) == #"{"error":"bad \"uuid\"\\\n\u0001é"}"#)
    }

    @Test func isValidJSON() throws {
        let body = JSONErrorBody.make("x\"y")
        #expect(try JSONValue.parse(body)["error"]?.stringValue == "x\"y")
    }
}
