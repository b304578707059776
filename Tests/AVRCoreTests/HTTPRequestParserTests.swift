import Testing
@testable import AVRCore

/// llhttp behind `HTTPRequestParser`, fed literal bytes whole and split at every index.
@Suite struct HTTPRequestParserTests {

    /// Feeds `bytes` in pieces of the given boundaries; returns the requests and the failure.
    func run(_ text: String, splitAt cuts: [Int] = [], limits: HTTPRequestParser.Limits = .init())
        -> (requests: [HTTPRequest], failure: HTTPRequestParser.Failure?, sawContinue: Bool) {
        let parser = HTTPRequestParser(limits: limits)
        let bytes = Array(text.utf8)
        var requests: [HTTPRequest] = []
        var sawContinue = false
        var pieces: [ArraySlice<UInt8>] = []
        var start = 0
        for cut in cuts + [bytes.count] where cut > start {
            pieces.append(bytes[start..<cut])
            start = cut
        }
        for piece in pieces {
            var rest = Array(piece)
            while !rest.isEmpty {
                let outcome = rest.withUnsafeBytes { parser.feed($0) }
                if parser.expectsContinue { sawContinue = true; parser.continueSent() }
                switch outcome {
                case .needMore: rest = []
                case .request(let request, let consumed):
                    requests.append(request)
                    rest.removeFirst(consumed)
                case .failure(let failure): return (requests, failure, sawContinue)
                }
            }
        }
        return (requests, nil, sawContinue)
    }

    let post = "POST /call HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"uuid\":\"\"}"

    @Test func aRequestSplitAtEveryIndexParsesTheSame() {
        for cut in 0...post.utf8.count {
            let result = run(post, splitAt: [cut])
            #expect(result.failure == nil)
            #expect(result.requests.count == 1)
            #expect(result.requests.first?.method == "POST")
            #expect(result.requests.first?.target == "/call")
            #expect(result.requests.first?.header("content-type") == "application/json")
            #expect(result.requests.first.map { String(decoding: $0.body, as: UTF8.self) } == "{\"uuid\":\"\"}")
        }
    }

    @Test func pipelinedRequestsComeOutOneAtATimeInOrder() {
        let text = post + "GET /health HTTP/1.1\r\nHost: x\r\n\r\n" + "GET /a?b=c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        let result = run(text)
        #expect(result.requests.map(\.target) == ["/call", "/health", "/a?b=c"])
        #expect(result.requests.map(\.keepAlive) == [true, true, false])
    }

    @Test func pipelinedRequestsSplitAtEveryIndexParseTheSame() {
        let text = post + "GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
        for cut in 0...text.utf8.count {
            let result = run(text, splitAt: [cut])
            #expect(result.failure == nil)
            #expect(result.requests.map(\.target) == ["/call", "/health"], "cut at \(cut)")
        }
    }

    @Test func chunkedBodiesAreReassembled() {
        let text = "POST /call HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n3\r\nefg\r\n0\r\n\r\n"
        for cut in 0...text.utf8.count {
            #expect(run(text, splitAt: [cut]).requests.first?.body == Array("abcdefg".utf8))
        }
    }

    @Test func expectContinueIsReportedBeforeTheBody() {
        let text = "POST /call HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n"
        #expect(run(text).sawContinue)
        #expect(run(text).requests.isEmpty)
    }

    @Test func limitsAndMalformedInput() {
        var small = HTTPRequestParser.Limits()
        small.maxHeaderBytes = 64
        small.maxBodyBytes = 4
        #expect(run("GET / HTTP/1.1\r\nHost: x\r\nX-Long: " + String(repeating: "a", count: 100) + "\r\n\r\n", limits: small).failure == .headersTooLarge)
        #expect(run("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n", limits: small).failure == .bodyTooLarge)
        #expect(run("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n3\r\ndef\r\n", limits: small).failure == .bodyTooLarge)
        if case .malformed = run("GARBAGE\r\n\r\n").failure {} else { Issue.record("garbage request line accepted") }
        if case .strictHead = run("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n").failure {} else {
            Issue.record("duplicate Content-Length accepted")
        }
        if case .strictHead = run("GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n").failure {} else { Issue.record("header without colon accepted") }
    }

    // MARK: Strict heads (StrictRequestScanner in front of llhttp)

    /// Each probe, whole and split at every index: 400 (`strictHead`, naming the violation),
    /// never a request, above all never the smuggled `POST /call`.
    @Test(arguments: [
        ("bare CR then a byte", "GET /health HTTP/1.1\r\nHost: x\r\n\rXPOST /call HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}", "CR not followed by LF"),
        ("obs-fold", "GET /health HTTP/1.1\r\nHost: x\r\nX-A: b\r\n c\r\n\r\n", "obs-fold"),
        ("obs-fold in Content-Length", "POST /call HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n 0\r\n\r\n0123456789", "obs-fold"),
        ("space in a header name", "GET /health HTTP/1.1\r\nHost: x\r\nX A: b\r\n\r\n", "non-token"),
        ("space before the colon", "GET /health HTTP/1.1\r\nHost : x\r\n\r\n", "non-token"),
        ("missing Host", "GET /health HTTP/1.1\r\nAccept: */*\r\n\r\n", "without Host"),
        ("repeated Host", "GET /health HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "more than one Host"),
        ("chunk data not followed by CRLF",
         "POST /call HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}XX0\r\n\r\nPOST /call HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
         "chunk data not followed by CRLF"),
    ])
    func strictProbesAreRejected(name: String, text: String, reason: String) {
        for cut in 0...text.utf8.count {
            let result = run(text, splitAt: [cut])
            #expect(result.requests.isEmpty, "\(name): a request got through (cut at \(cut))")
            guard case .strictHead(let message)? = result.failure else {
                Issue.record("\(name): not rejected by the strict head check (cut at \(cut)): \(String(describing: result.failure))")
                continue
            }
            #expect(message.contains(reason), "\(name): \(message)")
        }
    }

    /// llhttp alone (the scanner off) takes the probes: what the scanner is there for.
    @Test func llhttpAloneAcceptsTheSmugglingProbes() {
        var lenient = HTTPRequestParser.Limits()
        lenient.strict = false
        let bareCR = run("GET /health HTTP/1.1\r\nHost: x\r\n\rXPOST /call HTTP/1.1\r\nHost: x\r\n\r\n", limits: lenient)
        #expect(bareCR.failure == nil && !bareCR.requests.isEmpty)
        let chunk = run("POST /call HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}XX0\r\n\r\n", limits: lenient)
        #expect(chunk.failure == nil && chunk.requests.count == 1)
    }

    @Test func absoluteFormRoutesByPathAndTakesTheAuthorityAsHost() {
        let text = "POST http://avr.example:6001/call?x=1 HTTP/1.1\r\nHost: other\r\nContent-Length: 2\r\n\r\n{}"
        for cut in 0...text.utf8.count {
            let request = run(text, splitAt: [cut]).requests.first
            #expect(request?.target == "/call?x=1")
            #expect(request?.path == "/call")
            #expect(request?.headers.filter { $0.name.lowercased() == "host" }.map(\.value) == ["avr.example:6001"])
        }
    }
}
