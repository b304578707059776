import Testing
@testable import AVRCore

/// llhttp behind `HTTPResponseParser` (the one `LLHTTPParser` core), fed literal bytes whole
/// and split at every index, on a kept-alive connection (reset between responses), at EOF,
/// and from its own callbacks (re-entrancy).
@Suite struct HTTPResponseParserTests {
    struct Parsed: Equatable {
        var status: Int
        var headers: [String]
        var body: String
        var keepAlive: Bool
    }

    /// Feeds `text` in pieces cut at `cuts`, the way `ClientConnection` does: after a complete
    /// response the rest of the read is fed again after `reset()`; `eof` ends with `finishAtEOF`.
    func run(_ text: String, splitAt cuts: [Int] = [], eof: Bool = false, maxHeaderBytes: Int = 16 * 1024,
             maxBody: Int = 1 << 20) -> (responses: [Parsed], failure: HTTPResponseFailure?) {
        let parser = HTTPResponseParser(maxHeaderBytes: maxHeaderBytes)
        var body: [UInt8] = []
        var heads = 0
        parser.onHead = { heads += 1 }
        parser.onBody = { chunk in
            body.append(contentsOf: chunk)
            return body.count <= maxBody
        }
        var responses: [Parsed] = []
        func completed() {
            responses.append(Parsed(status: parser.status, headers: parser.headers.map { "\($0.name): \($0.value)" },
                                    body: String(decoding: body, as: UTF8.self), keepAlive: parser.keepAlive))
            body = []
            parser.reset()
        }
        let bytes = Array(text.utf8)
        var start = 0
        for cut in cuts + [bytes.count] where cut > start {
            var rest = Array(bytes[start..<cut])
            start = cut
            while !rest.isEmpty {
                switch rest.withUnsafeBytes({ parser.feed($0) }) {
                case .needMore: rest = []
                case .complete(let consumed):
                    #expect(consumed > 0 && consumed <= rest.count)
                    rest.removeFirst(consumed)
                    completed()
                case .failure(let failure): return (responses, failure)
                }
            }
        }
        if eof {
            switch parser.finishAtEOF() {
            case .complete: completed()
            case .failure(let failure): return (responses, failure)
            case .needMore: Issue.record("needMore at EOF")
            }
        }
        #expect(heads >= responses.count)
        return (responses, nil)
    }

    let ok = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"a\":\"bcd\"}"
    let chunked = "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n3\r\nefg\r\n0\r\n\r\n"
    let closing = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end"

    @Test func aResponseSplitAtEveryIndexParsesTheSame() {
        let expected = Parsed(status: 200, headers: ["Content-Type: application/json", "Content-Length: 11"],
                              body: "{\"a\":\"bcd\"}", keepAlive: true)
        for cut in 0...ok.utf8.count {
            let result = run(ok, splitAt: [cut])
            #expect(result.failure == nil)
            #expect(result.responses == [expected], "cut at \(cut)")
        }
    }

    @Test func keptAliveResponsesSplitAtEveryIndexComeOutInOrder() {
        let text = ok + chunked + "HTTP/1.1 204 No Content\r\n\r\n"
        for cut in 0...text.utf8.count {
            let result = run(text, splitAt: [cut])
            #expect(result.failure == nil)
            #expect(result.responses.map(\.status) == [200, 201, 204], "cut at \(cut)")
            #expect(result.responses.map(\.body) == ["{\"a\":\"bcd\"}", "abcdefg", ""], "cut at \(cut)")
        }
    }

    @Test func aCloseDelimitedBodyEndsAtEOF() {
        for cut in 0...closing.utf8.count {
            let result = run(closing, splitAt: [cut], eof: true)
            #expect(result.failure == nil)
            #expect(result.responses.map(\.body) == ["until the end"], "cut at \(cut)")
            #expect(result.responses.map(\.keepAlive) == [false])
        }
    }

    @Test func truncationAndEmptinessAtEOFAreTyped() {
        #expect(run("", eof: true).failure == .closedBeforeResponse)
        for cut in 1..<ok.utf8.count {
            let prefix = String(decoding: Array(ok.utf8)[..<cut], as: UTF8.self)
            #expect(run(prefix, eof: true).failure == .closedMidResponse, "truncated at \(cut)")
        }
    }

    @Test func limitsAndMalformedInputAreTyped() {
        let long = "HTTP/1.1 200 OK\r\nX-Long: " + String(repeating: "a", count: 100) + "\r\n\r\n"
        #expect(run(long, maxHeaderBytes: 64).failure == .headersTooLarge(limit: 64))
        #expect(run(ok, maxBody: 4).failure == .bodyTooLarge)
        guard case .malformed(let code, let reason)? = run("HTTX/1.1 200 OK\r\n\r\n").failure else {
            Issue.record("garbage status line accepted")
            return
        }
        #expect(code != 0 && !reason.isEmpty)
        #expect(HTTPResponseFailure.closedMidResponse.description == "connection closed in the middle of the response")
        #expect(HTTPResponseFailure.headersTooLarge(limit: 64).description == "response headers exceed 64 bytes")
    }

    /// `onHead` runs inside llhttp: a `feed` or `finishAtEOF` from it is refused (llhttp is
    /// never entered twice) and the outer parse goes on undisturbed.
    @Test func feedFromOnHeadIsRefused() {
        let parser = HTTPResponseParser()
        var inner: [HTTPResponseParser.Outcome] = []
        parser.onHead = {
            inner.append(Array("HTTP/1.1 500 No\r\n\r\n".utf8).withUnsafeBytes { parser.feed($0) })
            inner.append(parser.finishAtEOF())
        }
        var body: [UInt8] = []
        parser.onBody = { body.append(contentsOf: $0); return true }
        let outcome = Array(ok.utf8).withUnsafeBytes { parser.feed($0) }
        #expect(inner == [.failure(.reentered), .failure(.reentered)])
        #expect(outcome == .complete(consumed: ok.utf8.count))
        #expect(parser.status == 200)
        #expect(String(decoding: body, as: UTF8.self) == "{\"a\":\"bcd\"}")
        parser.onHead = nil  // the closure captures the parser
    }

    /// A `reset()` from `onHead` (the user abandons this response) takes effect when llhttp
    /// has returned: the body is not delivered, `feed` reports `.needMore`, and the parser
    /// then parses a fresh response from its first byte.
    @Test(arguments: Array(0...2))
    func resetFromOnHeadTakesEffectAfterwards(split: Int) {
        let parser = HTTPResponseParser()
        var resetNext = true
        var heads = 0
        parser.onHead = {
            heads += 1
            if resetNext { resetNext = false; parser.reset() }
        }
        var body: [UInt8] = []
        parser.onBody = { body.append(contentsOf: $0); return true }
        let first = "HTTP/1.1 503 Busy\r\nContent-Length: 5\r\n\r\nbusy!"
        let bytes = Array(first.utf8)
        // The abandoned response, whole or with its body in a later read.
        let cut = [bytes.count, bytes.count - 5, bytes.count - 2][split]
        #expect(Array(bytes[..<cut]).withUnsafeBytes { parser.feed($0) } == .needMore)
        #expect(body.isEmpty)
        #expect(parser.status == 0 && parser.headers.isEmpty && !parser.sawBytes)
        // The rest of an abandoned response is the caller's to discard; a new response parses.
        #expect(Array(ok.utf8).withUnsafeBytes { parser.feed($0) } == .complete(consumed: ok.utf8.count))
        #expect(parser.status == 200 && heads == 2)
        #expect(String(decoding: body, as: UTF8.self) == "{\"a\":\"bcd\"}")
        parser.onHead = nil  // the closure captures the parser
    }
}

/// The core directly: a handler that re-enters `execute` from every callback is refused
/// each time, and a parser pausing after each request resumes for the next.
@Suite struct LLHTTPParserTests {
    final class Reentrant: LLHTTPHandler {
        var parser: LLHTTPParser!
        var refusals = 0
        var callbacks = 0
        var completed = 0
        init() { parser = LLHTTPParser(.request, handler: self) }

        private func reenter() -> LLHTTPParser.Verdict {
            callbacks += 1
            if Array("GET / HTTP/1.1\r\n\r\n".utf8).withUnsafeBytes({ parser.execute($0) }) == .reentered { refusals += 1 }
            if parser.finish() == .reentered { refusals += 1 }
            return .proceed
        }
        func messageBegan(_ parser: LLHTTPParser) -> LLHTTPParser.Verdict { reenter() }
        func url(_ data: UnsafeRawBufferPointer, _ parser: LLHTTPParser) -> LLHTTPParser.Verdict { reenter() }
        func status(_ data: UnsafeRawBufferPointer, _ parser: LLHTTPParser) -> LLHTTPParser.Verdict { reenter() }
        func headerField(_ data: UnsafeRawBufferPointer, _ parser: LLHTTPParser) -> LLHTTPParser.Verdict { reenter() }
        func headerValue(_ data: UnsafeRawBufferPointer, _ parser: LLHTTPParser) -> LLHTTPParser.Verdict { reenter() }
        func headersCompleted(_ parser: LLHTTPParser) -> LLHTTPParser.Verdict { reenter() }
        func body(_ data: UnsafeRawBufferPointer, _ parser: LLHTTPParser) -> LLHTTPParser.Verdict { reenter() }
        func messageCompleted(_ parser: LLHTTPParser) -> LLHTTPParser.Verdict {
            _ = reenter()
            completed += 1
            return .pause
        }
    }

    @Test func everyCallbackIsRefusedReentry() {
        let handler = Reentrant()
        let text = Array("POST /x HTTP/1.1\r\nA: b\r\nContent-Length: 2\r\n\r\nhiGET / HTTP/1.1\r\n\r\n".utf8)
        var rest = text[...]
        while !rest.isEmpty {
            switch Array(rest).withUnsafeBytes({ handler.parser.execute($0) }) {
            case .paused(let consumed):
                handler.parser.resume()
                rest = rest.dropFirst(consumed)
            case .ok: rest = []
            case let other: Issue.record("unexpected \(other)"); return
            }
        }
        #expect(handler.completed == 2)
        // Each callback tried execute and finish once; both were refused every time.
        #expect(handler.callbacks >= 11)
        #expect(handler.refusals == 2 * handler.callbacks)
        #expect(!handler.parser.isExecuting)
    }
}
