import Testing
@testable import AVRProtocol

/// Feeds `chunks` to a fresh parser and returns every event; with `merged`, adjacent `.text`
/// merged (plain text may be cut differently for different splits; nothing else may differ).
private func parseLLM(_ chunks: [[UInt8]], merged: Bool = false) -> [LLMReplyEvent] {
    var parser = LLMReplyParser()
    var events: [LLMReplyEvent] = []
    for chunk in chunks { events += chunk.withUnsafeBytes { parser.append($0) } }
    events += parser.finish()
    return merged ? mergeText(events) : events
}

func mergeText(_ events: [LLMReplyEvent]) -> [LLMReplyEvent] {
    var merged: [LLMReplyEvent] = []
    for event in events {
        if case .text(let more) = event, case .text(let text)? = merged.last {
            merged[merged.count - 1] = .text(text + more)
        } else {
            merged.append(event)
        }
    }
    return merged
}

@Suite struct PipelineLLMReplyParserTests {
    /// JSON bodies: the same events, one per object, however the body is cut.
    private func verify(_ body: String, _ expected: [LLMReplyEvent], sourceLocation: SourceLocation = #_sourceLocation) {
        verify(Array(body.utf8), expected, sourceLocation: sourceLocation)
    }

    private func verify(_ bytes: [UInt8], _ expected: [LLMReplyEvent], merged: Bool = false,
                        sourceLocation: SourceLocation = #_sourceLocation) {
        for (label, chunks) in chunkings(of: bytes) {
            #expect(parseLLM(chunks, merged: merged) == expected, "\(label)", sourceLocation: sourceLocation)
        }
    }

    /// Plain-text bodies: the same text, in pieces that depend on the cut.
    private func verifyText(_ body: String, _ expected: [LLMReplyEvent], sourceLocation: SourceLocation = #_sourceLocation) {
        verify(Array(body.utf8), expected, merged: true, sourceLocation: sourceLocation)
    }

    @Test func oneObjectPerDelta() {
        verify(#"{"type":"text","content":"Hello"}{"type":"text","content":" world."}"#,
               [.text("Hello"), .text(" world.")])
    }

    @Test func wholeReplyInOneObject() {
        verify(#"{"type":"text","content":"Sure. Your order ships on Monday!"}"#,
               [.text("Sure. Your order ships on Monday!")])
    }

    @Test func whitespaceNewlinesAndCommasBetweenObjects() {
        verify("  \n{\"type\":\"text\",\"content\":\"a\"}\n\n{\"type\":\"text\",\"content\":\"b\"},\r\n{ \"type\" : \"text\" , \"content\" : \"c\" }\n",
               [.text("a"), .text("b"), .text("c")])
    }

    @Test func statusErrorAndUnknownTypes() {
        verify(#"{"type":"status","content":"thinking"}{"type":"text","content":"Hi."}{"type":"tool_call","name":"transfer"}{"type":"error","content":"rate limited"}{"type":"status","content":{"step":2}}"#,
               [.status("thinking"), .text("Hi."), .ignored(type: "tool_call"), .error("rate limited"), .status(#"{"step":2}"#)])
        verify(#"{"content":"no type"}{"message":"upstream failed"}{"error":{"message":"bad key"}}{"other":1}"#,
               [.text("no type"), .error("upstream failed"), .error("bad key"), .ignored(type: "")])
        verify(#"{"type":"text"}{"type":7}"#, [.ignored(type: "text"), .ignored(type: "7")])
    }

    @Test func bracesAndQuotesInsideStrings() {
        verify(#"{"type":"text","content":"a } b { c"}{"type":"text","content":"say \"{hi}\""}"#,
               [.text("a } b { c"), .text(#"say "{hi}""#)])
        // An escaped backslash right before the closing quote.
        verify(#"{"type":"text","content":"path C:\\"}{"type":"text","content":"x\\\"}"}"#,
               [.text(#"path C:\"#), .text(#"x\"}"#)])
    }

    @Test func escapesAndUnicode() {
        verify(#"{"type":"text","content":"caf\u00e9 \u00C9t\u00e9 \ud83d\ude00 tab\tnl\n \/"}"#,
               [.text("café Été 😀 tab\tnl\n /")])
        // Raw UTF-8, two-, three- and four-byte sequences, split everywhere by `verify`.
        verify(#"{"type":"text","content":"héllo €uro 😀 日本"}"#, [.text("héllo €uro 😀 日本")])
    }

    @Test func nestedObjectsAndArrays() {
        verify(#"{"type":"text","content":"x","meta":{"a":[{"b":"}"}],"c":{}}}{"type":"text","content":"y"}"#,
               [.text("x"), .text("y")])
    }

    @Test func plainTextAndMarkdownReplies() {
        verifyText("Hello there. How can I help?", [.text("Hello there. How can I help?")])
        verifyText("\n\n**Sure!** Here is a list:\n- one\n- two\n", [.text("**Sure!** Here is a list:\n- one\n- two\n")])
        verifyText("héllo 😀 日本", [.text("héllo 😀 日本")])
        verifyText("[1] a citation first", [.text("[1] a citation first")])
        // A reply that starts like `data` but is not SSE.
        verifyText("dat is fine", [.text("dat is fine")])
        verifyText("d", [.text("d")])
    }

    @Test func textThatStartsWithABrace() {
        verifyText("{Note} Hello. {again}", [.text("{Note} Hello. {again}")])
        verifyText("{ not closed", [.text("{ not closed")])
    }

    @Test func sseFramedObjects() {
        verify("data: {\"type\":\"text\",\"content\":\"a\"}\n\ndata: {\"type\":\"text\",\"content\":\"b\"}\n\ndata: [DONE]\n\n",
               [.text("a"), .text("b")])
    }

    @Test func malformedObjectsAfterTheFirst() {
        verify(#"{"type":"text","content":"a"}{"type":"text","content":bad}{"type":"text","content":"c"}"#,
               [.text("a"), .error("malformed JSON object in the reply (invalid JSON at byte 25: expected a value)"), .text("c")])
        verify(#"{"type":"text","content":"a"} junk {"type":"text","content":"c"}"#,
               [.text("a"), .error("4 bytes of non-JSON text between the reply's JSON objects"), .text("c")])
        verify(#"{"type":"text","content":"a"}{"type":"text","content":"tru"#,
               [.text("a"), .error("the reply ended inside a JSON object")])
        // A first object cut off: an error, not JSON read aloud.
        verify(#"{"type":"text","content":"tru"#, [.error("the reply ended inside a JSON object")])
        // A lone surrogate is not valid JSON.
        verify(#"{"type":"text","content":"a"}{"type":"text","content":"\ud83d"}"#,
               [.text("a"), .error("malformed JSON object in the reply (invalid JSON at byte 26: unpaired UTF-16 surrogate in \\u escape)")])
    }

    @Test func byteOrderMarkIsSkipped() {
        let bom: [UInt8] = [0xEF, 0xBB, 0xBF]
        verify(bom + Array(#"{"type":"text","content":"a"}"#.utf8), [.text("a")])
        verify(bom + Array("Plain.".utf8), [.text("Plain.")], merged: true)
        // Only a whole mark at the start; a second one is text, a broken one invalid UTF-8.
        verify(bom + bom + Array("x".utf8), [.text("\u{FEFF}x")], merged: true)
        verify([0xEF, 0xBB, 0x78], [.text("\u{FFFD}x")], merged: true)
    }

    @Test func emptyAndWhitespaceBodies() {
        verifyText("", [])
        verifyText(" \n\t ", [])
    }

    @Test func invalidUTF8InTextIsReplacedOnlyWhereInvalid() {
        // A valid é cut anywhere never becomes U+FFFD; a stray continuation byte does.
        verify([0x61, 0xC3, 0xA9, 0x80, 0x62], [.text("aé\u{FFFD}b")], merged: true)
        verify([0x61, 0xE2, 0x82], [.text("a\u{FFFD}")], merged: true)
    }

    @Test func coalescedManyDeltas() {
        let words = (0..<50).map { "w\($0) " }
        let body = words.map { #"{"type":"text","content":"\#($0)"}"# }.joined()
        var parser = LLMReplyParser()
        let events = Array(body.utf8).withUnsafeBytes { parser.append($0) } + parser.finish()
        #expect(events == words.map { .text($0) })
    }

    @Test func oversizedObjectIsSkipped() {
        let big = #"{"type":"text","content":""# + String(repeating: "x", count: LLMReplyParser.maximumObjectBytes) + #""}"#
        var parser = LLMReplyParser()
        var events: [LLMReplyEvent] = []
        for piece in [big, #"{"type":"text","content":"after"}"#] {
            events += Array(piece.utf8).withUnsafeBytes { parser.append($0) }
        }
        events += parser.finish()
        #expect(events == [.error("a JSON object over \(LLMReplyParser.maximumObjectBytes) bytes was skipped"), .text("after")])
    }

    @Test func randomSplitsOfAMixedStream() {
        var generator = SplitMix64(seed: 12)
        let body = Array((#"{"type":"status","content":"go"}"# + "\n" + #"{"type":"text","content":"Dr. Smith \"said\" 3.14 \u00e9\ud83d\ude00 日本."}{"type":"x"}"#).utf8)
        let expected = parseLLM([body])
        #expect(expected == [.status("go"), .text("Dr. Smith \"said\" 3.14 é😀 日本."), .ignored(type: "x")])
        for _ in 0..<200 {
            var chunks: [[UInt8]] = []
            var index = 0
            while index < body.count {
                let length = Int.random(in: 1...7, using: &generator)
                chunks.append(Array(body[index..<min(body.count, index + length)]))
                index += length
            }
            #expect(parseLLM(chunks) == expected)
        }
    }
}
