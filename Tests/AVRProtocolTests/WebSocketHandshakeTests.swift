import Testing
@testable import AVRProtocol

@Suite struct WebSocketHandshakeTests {
    static let key = "dGhlIHNhbXBsZSBub25jZQ=="

    static func response(_ lines: [String]) -> [UInt8] {
        Array((lines.joined(separator: "\r\n") + "\r\n\r\n").utf8)
    }

    static let goodResponse = response([
        "HTTP/1.1 101 Switching Protocols",
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
    ])

    @Test func requestBytes() {
        let request = WebSocketHandshake.makeRequest(host: "localhost:6030", requestTarget: "/?from=2000&to=5001", key: Self.key)
        #expect(String(decoding: request, as: UTF8.self) == """
            GET /?from=2000&to=5001 HTTP/1.1\r
            Host: localhost:6030\r
            Upgrade: websocket\r
            Connection: Upgrade\r
            Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r
            Sec-WebSocket-Version: 13\r
            User-Agent: avr-core\r
            \r

            """)
    }

    @Test func keysAreSixteenRandomBytes() throws {
        var generator = SplitMix64(seed: 9)
        let first = WebSocketHandshake.makeKey(using: &generator)
        let second = WebSocketHandshake.makeKey(using: &generator)
        #expect(first.utf8.count == 24)
        #expect(try Base64.decode(first).count == 16)
        #expect(first != second)
    }

    @Test func acceptsAValidResponseFedInAnyPieces() throws {
        let frameBytes = [UInt8](hex: "81 05 48 65 6c 6c 6f")
        let bytes = Self.goodResponse + frameBytes
        for (label, chunks) in chunkings(of: bytes) {
            var parser = WebSocketHandshakeResponseParser(key: Self.key)
            var buffer = ByteBuffer()
            var response: WebSocketHandshakeResponse?
            for chunk in chunks {
                buffer.append(contentsOf: chunk)
                if response == nil { response = try parser.parse(&buffer) }
            }
            #expect(response?.headLength == Self.goodResponse.count, "\(label)")
            #expect(response?.headers.count == 3, "\(label)")
            #expect(buffer.withReadableBytes { Array($0) } == frameBytes, "\(label): frames stay in the buffer")
        }
    }

    @Test func headersAreCaseInsensitiveAndConnectionIsATokenList() throws {
        var parser = WebSocketHandshakeResponseParser(key: Self.key)
        var buffer = ByteBuffer(bytes: Self.response([
            "HTTP/1.1 101 Switching Protocols",
            "upgrade:WebSocket",
            "CONNECTION: keep-alive,  Upgrade ",
            "sec-websocket-accept:   s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\t",
            "Sec-WebSocket-Extensions:",
            "Date: Thu, 01 Jan 2026 00:00:00 GMT",
        ]))
        let response = try #require(try parser.parse(&buffer))
        #expect(response.headers.first?.name == "upgrade")
        #expect(buffer.isEmpty)
    }

    private func failure(_ lines: [String]) -> WebSocketHandshakeError? {
        var parser = WebSocketHandshakeResponseParser(key: Self.key)
        var buffer = ByteBuffer(bytes: Self.response(lines))
        do {
            _ = try parser.parse(&buffer)
            return nil
        } catch {
            return error
        }
    }

    @Test func refusals() {
        let notFound = failure(["HTTP/1.1 404 Not Found", "Content-Length: 0"])
        #expect(notFound == .refused(status: 404, reason: "Not Found"))
        #expect(notFound?.description == "handshake refused: HTTP 404 Not Found")
        #expect(WebSocketHandshakeError.refused(status: 404, reason: "").description == "handshake refused: HTTP 404")
        #expect(failure(["HTTP/1.1 200 OK"]) == .refused(status: 200, reason: "OK"))
    }

    @Test func invalidResponses() {
        let accept = "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        #expect(failure(["HTTP/1.1 101", "Connection: Upgrade", accept]) == .missingUpgrade)
        #expect(failure(["HTTP/1.1 101", "Upgrade: h2c", "Connection: Upgrade", accept]) == .missingUpgrade)
        #expect(failure(["HTTP/1.1 101", "Upgrade: websocket", "Connection: keep-alive", accept]) == .missingConnectionUpgrade)
        #expect(failure(["HTTP/1.1 101", "Upgrade: websocket", "Connection: Upgrade"]) == .missingAccept)
        #expect(failure(["HTTP/1.1 101", "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Accept: AAAA"])
            == .acceptMismatch(received: "AAAA"))
        #expect(failure(["HTTP/1.1 101", "Upgrade: websocket", "Connection: Upgrade", accept, "Sec-WebSocket-Extensions: permessage-deflate"])
            == .unsupportedExtension("permessage-deflate"))
        #expect(failure(["HTTP/1.1 101", "Upgrade: websocket", "Connection: Upgrade", accept, "Sec-WebSocket-Protocol: chat"])
            == .unsupportedSubprotocol("chat"))
        #expect(failure(["ICY 101 OK", "Upgrade: websocket"]) == .malformedStatusLine)
        #expect(failure(["HTTP/1.1 1O1 Switching"]) == .malformedStatusLine)
        #expect(failure(["HTTP/1.1 101 Switching", "Upgrade websocket"]) == .malformedHeader)
        #expect(failure(["HTTP/1.1 101 Switching", "Upgrade: websocket", " folded"]) == .malformedHeader)
        #expect(failure(["HTTP/1.1 101 Switching", "Bad Name: x"]) == .malformedHeader)
    }

    @Test func headIsBounded() {
        var parser = WebSocketHandshakeResponseParser(key: Self.key)
        var buffer = ByteBuffer()
        var caught: WebSocketHandshakeError?
        do {
            for _ in 0..<100 {
                buffer.append(contentsOf: Array("X-Filler: 0123456789012345678901234567890123456789012345678901234567890123456789\r\n".utf8))
                #expect(try parser.parse(&buffer) == nil)
            }
        } catch {
            caught = error
        }
        #expect(caught == .headTooLarge(limit: 8192))
    }
}
