import Testing
@testable import AVRProtocol

private let ms: UInt64 = 1_000_000

/// What the assembler returned for a body: turns and errors, in order.
private enum ASROutput: Equatable {
    case turn(String)
    case error(String)
}

/// Feeds `pieces` (bytes and arrival time), polling `takeTurn` at every arrival and at every
/// deadline, then finishes at `end`.
private func assemble(_ pieces: [(bytes: [UInt8], at: UInt64)], end: UInt64, debounce: UInt64 = 300 * ms) -> [ASROutput] {
    var assembler = ASRTranscriptAssembler(debounceNanoseconds: debounce)
    var output: [ASROutput] = []
    func drain(_ now: UInt64) {
        while let turn = assembler.takeTurn(at: now) { output.append(.turn(turn)) }
        while let error = assembler.takeError() { output.append(.error(error)) }
    }
    for piece in pieces {
        if let deadline = assembler.deadline, deadline <= piece.at { drain(deadline) }
        piece.bytes.withUnsafeBytes { assembler.append($0, at: piece.at) }
        drain(piece.at)
    }
    if let deadline = assembler.deadline, deadline <= end { drain(deadline) }
    if let last = assembler.finish() { output.append(.turn(last)) }
    drain(end)
    #expect(assembler.deadline == nil)
    return output
}

@Suite struct PipelineASRTranscriptAssemblerTests {
    /// One write, delivered cut at every index and byte by byte (all pieces at the same time).
    private func verify(_ text: [UInt8], _ expected: [ASROutput], sourceLocation: SourceLocation = #_sourceLocation) {
        for (label, chunks) in chunkings(of: text) {
            let pieces = chunks.map { (bytes: $0, at: 1000 * ms) }
            #expect(assemble(pieces, end: 5000 * ms) == expected, "\(label)", sourceLocation: sourceLocation)
        }
    }

    private func verify(_ text: String, _ expected: [ASROutput], sourceLocation: SourceLocation = #_sourceLocation) {
        verify(Array(text.utf8), expected, sourceLocation: sourceLocation)
    }

    @Test func bareTranscripts() {
        verify("I would like to book a table", [.turn("I would like to book a table")])
        verify("  hello there\n", [.turn("hello there")])
        verify("ça coûte 5 € 😀 日本語\r\n", [.turn("ça coûte 5 € 😀 日本語")])
    }

    @Test func controlTokensAreStripped() {
        verify("book a table<end>\n", [.turn("book a table")])
        verify("<fin>yes please<eos>", [.turn("yes please")])
        verify("hello</s> <|endoftext|> world <EOS>", [.turn("hello world")])
        // Not tokens: kept.
        verify("I <3 you and 2 < 3 > 1 and <a b>", [.turn("I <3 you and 2 < 3 > 1 and <a b>")])
        verify("a\u{0}b\u{7F}c\u{1B}d", [.turn("a b c d")])
        verify("<end>\n", [])
        verify("  \n\n ", [])
    }

    @Test func errorObjectsInTheStreamAreErrorsNotTranscripts() {
        verify(#"{"message":"Deepgram connection closed"}"#, [.error("Deepgram connection closed")])
        verify(#" {"error":"quota exceeded"}"# + "\n", [.error("quota exceeded")])
        verify(#"{"error":{"message":"bad key","code":401}}"#, [.error("bad key")])
        verify(#"{"type":"error","content":"engine down"}"#, [.error("engine down")])
        // Braces that are not such an object stay text.
        verify("{curly} words", [.turn("{curly} words")])
        verify(#"{"text":"hi"}"#, [.turn(#"{"text":"hi"}"#)])
    }

    @Test func piecesCloseTogetherAreOneTurn() {
        let pieces: [(bytes: [UInt8], at: UInt64)] = [
            (Array("I want".utf8), 1000 * ms), (Array("to book".utf8), 1200 * ms), (Array("a table<end>".utf8), 1450 * ms),
            (Array("for two\n".utf8), 2500 * ms),
        ]
        #expect(assemble(pieces, end: 9000 * ms) == [.turn("I want to book a table"), .turn("for two")])
    }

    @Test func oneWriteCutByTCPIsNotSpaced() {
        // Same instant, or a character cut between pieces 100 ms apart: no space inserted.
        let cafe = Array("café au lait".utf8)
        let cut = cafe.firstIndex(of: 0xA9)!  // inside é
        let pieces: [(bytes: [UInt8], at: UInt64)] = [(Array(cafe[..<cut]), 1000 * ms), (Array(cafe[cut...]), 1100 * ms)]
        #expect(assemble(pieces, end: 9000 * ms) == [.turn("café au lait")])
        #expect(assemble([(Array("hel".utf8), 1000 * ms), (Array("lo".utf8), 1000 * ms + 1)], end: 9000 * ms) == [.turn("hello")])
    }

    @Test func deadlinesFollowTheLastPiece() {
        var assembler = ASRTranscriptAssembler(debounceNanoseconds: 300 * ms)
        #expect(assembler.deadline == nil)
        Array("one".utf8).withUnsafeBytes { assembler.append($0, at: 1000 * ms) }
        #expect(assembler.deadline == 1300 * ms)
        #expect(assembler.takeTurn(at: 1299 * ms) == nil)
        Array("two".utf8).withUnsafeBytes { assembler.append($0, at: 1200 * ms) }
        #expect(assembler.deadline == 1500 * ms)
        #expect(assembler.takeTurn(at: 1400 * ms) == nil)
        #expect(assembler.takeTurn(at: 1500 * ms) == "one two")
        #expect(assembler.deadline == nil)
        // A caller that polls late still gets separate turns for pieces far apart.
        Array("three".utf8).withUnsafeBytes { assembler.append($0, at: 5000 * ms) }
        Array("four".utf8).withUnsafeBytes { assembler.append($0, at: 6000 * ms) }
        #expect(assembler.takeTurn(at: 6000 * ms) == "three")
        #expect(assembler.takeTurn(at: 6000 * ms) == nil)
        #expect(assembler.finish() == "four")
        #expect(assembler.finish() == nil)
    }

    @Test func theTentativeTextIsTheTurnSoFar() {
        var assembler = ASRTranscriptAssembler(debounceNanoseconds: 300 * ms)
        #expect(assembler.tentative == nil)
        Array("  I want<fin>".utf8).withUnsafeBytes { assembler.append($0, at: 1000 * ms) }
        #expect(assembler.tentative == "I want")
        Array("to book\n".utf8).withUnsafeBytes { assembler.append($0, at: 1200 * ms) }
        #expect(assembler.tentative == "I want to book")
        #expect(assembler.takeTurn(at: 1500 * ms) == "I want to book")
        #expect(assembler.tentative == nil)
        // Nothing but a control token, or what may be an error body, is no tentative text.
        Array("<end>".utf8).withUnsafeBytes { assembler.append($0, at: 2000 * ms) }
        #expect(assembler.tentative == nil)
        #expect(assembler.takeTurn(at: 2300 * ms) == nil)
        Array(#"{"message":"#.utf8).withUnsafeBytes { assembler.append($0, at: 3000 * ms) }
        #expect(assembler.tentative == nil)
    }

    @Test func aCharacterCutAtTheEndIsReplacedOnlyAtFinish() {
        var assembler = ASRTranscriptAssembler()
        ([0x6F, 0x6B, 0xE2, 0x82] as [UInt8]).withUnsafeBytes { assembler.append($0, at: 0) }
        let last = assembler.finish()
        #expect(last == "ok\u{FFFD}", "\(Array((last ?? "").unicodeScalars.map(\.value)))")
    }

    @Test func controlTokenHelper() {
        #expect(ASRTranscriptAssembler.clean("a<end>b") == "a b")
        #expect(ASRTranscriptAssembler.clean("<" + String(repeating: "x", count: 24) + ">") == "")
        #expect(ASRTranscriptAssembler.clean("<" + String(repeating: "x", count: 25) + ">") == "<" + String(repeating: "x", count: 25) + ">")
        #expect(ASRTranscriptAssembler.clean("<>") == "<>")
        #expect(ASRTranscriptAssembler.clean("<end") == "<end")
    }
}

@Suite struct PipelineConversationTests {
    @Test func llmRequestBodyCarriesUUIDMessageAndHistory() throws {
        var history = ConversationHistory()
        #expect(String(decoding: history.llmRequestBody(uuid: "u-1", message: "hi"), as: UTF8.self)
            == #"{"uuid":"u-1","message":"hi","messages":[]}"#)
        history.addUser("What's \"on\"\ntoday?")
        history.addAssistant("Jazz at 8.")
        history.addUser("5")
        let body = history.llmRequestBody(uuid: "1b2c", message: "5")
        #expect(String(decoding: body, as: UTF8.self) ==
            #"{"uuid":"1b2c","message":"5","messages":[{"role":"user","content":"What's \"on\"\ntoday?"},{"role":"assistant","content":"Jazz at 8."},{"role":"user","content":"5"}]}"#)
        let parsed = try JSONValue.parse(body)
        #expect(parsed["messages"]?.arrayValue?.count == 3)
        #expect(parsed["messages"]?.arrayValue?[0]["content"]?.stringValue == "What's \"on\"\ntoday?")
    }

    @Test func historyIsBounded() {
        var history = ConversationHistory(maximumMessages: 3)
        for index in 0..<5 { history.addUser("m\(index)") }
        #expect(history.messages.map(\.content) == ["m2", "m3", "m4"])
    }

    @Test func ttsRequestBody() {
        #expect(String(decoding: ConversationHistory.ttsRequestBody(text: "Say \"é\" \\ now."), as: UTF8.self)
            == #"{"text":"Say \"é\" \\ now."}"#)
    }

    @Test func moduleErrorBodies() {
        func describe(_ status: Int, _ body: String) -> String { ModuleErrorBody.describe(status: status, body: Array(body.utf8)) }
        #expect(describe(500, #"{"message":"Deepgram error"}"#) == "HTTP 500: Deepgram error")
        #expect(describe(429, #"{"error":"rate limited"}"#) == "HTTP 429: rate limited")
        #expect(describe(401, #"{"error":{"message":"Incorrect API key","type":"invalid_request_error"}}"#) == "HTTP 401: Incorrect API key")
        #expect(describe(422, #"{"detail":[{"loc":["body","text"]}]}"#) == #"HTTP 422: [{"loc":["body","text"]}]"#)
        #expect(describe(400, #"{"code":7}"#) == #"HTTP 400: {"code":7}"#)
        #expect(describe(502, "Bad Gateway\r\n\r\nupstream\tdown\u{1B}[31m") == "HTTP 502: Bad Gateway upstream down [31m")
        #expect(describe(503, "") == "HTTP 503 (empty body)")
        #expect(describe(500, "  \n ") == "HTTP 500 (empty body)")
        let long = describe(500, String(repeating: "a", count: 1000))
        #expect(long == "HTTP 500: " + String(repeating: "a", count: ModuleErrorBody.maximumCharacters) + "…")
        #expect(ModuleErrorBody.describe(status: 500, body: [0x66, 0xFF, 0x6F]) == "HTTP 500: f\u{FFFD}o")
    }
}
