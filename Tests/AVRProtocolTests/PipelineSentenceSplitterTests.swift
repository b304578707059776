import Testing
@testable import AVRProtocol

private func split(_ pieces: [String]) -> [String] {
    var splitter = SentenceSplitter()
    var sentences: [String] = []
    for piece in pieces { sentences += splitter.append(piece) }
    return sentences + splitter.finish()
}

/// The ways the LLM parser may hand the text over: whole, scalar by scalar, and in two
/// pieces cut at every scalar.
func textChunkings(of text: String) -> [(label: String, pieces: [String])] {
    let scalars = Array(text.unicodeScalars)
    func string(_ slice: ArraySlice<Unicode.Scalar>) -> String {
        var view = String.UnicodeScalarView()
        view.append(contentsOf: slice)
        return String(view)
    }
    var result: [(String, [String])] = [("whole", [text]), ("scalar by scalar", scalars.map { String($0) })]
    for index in 0...scalars.count {
        result.append(("split at \(index)", [string(scalars[..<index]), string(scalars[index...])]))
    }
    return result
}

@Suite struct PipelineSentenceSplitterTests {
    private func verify(_ text: String, _ expected: [String], sourceLocation: SourceLocation = #_sourceLocation) {
        for (label, pieces) in textChunkings(of: text) {
            #expect(split(pieces) == expected, "\(label)", sourceLocation: sourceLocation)
        }
    }

    @Test func cutsOnTerminators() {
        verify("Hello there. How are you? Great!", ["Hello there.", "How are you?", "Great!"])
        verify("Really?! Yes!!! Done", ["Really?!", "Yes!!!", "Done"])
        verify("One.Two. Three", ["One.Two.", "Three"])
    }

    @Test func closingQuotesStayWithTheSentence() {
        verify(#"He said "Hi." Then he left. (Really.) Ok"#, [#"He said "Hi.""#, "Then he left.", "(Really.)", "Ok"])
        verify("Sie sagte »Ja!« Dann ging sie.", ["Sie sagte »Ja!« Dann ging sie."])
    }

    @Test func abbreviationsAndInitialsDoNotCut() {
        verify("Dr. Smith and Mr. Jones met Mrs. Brown vs. the team. Next.",
               ["Dr. Smith and Mr. Jones met Mrs. Brown vs. the team.", "Next."])
        verify("Bring fruit, e.g. apples, i.e. red ones. Also U.S. mail. Done.",
               ["Bring fruit, e.g. apples, i.e. red ones.", "Also U.S. mail.", "Done."])
        verify("Call J. R. Tolkien now. Ok.", ["Call J. R. Tolkien now.", "Ok."])
        verify("It was (e.g. this) fine. No. I mean yes.", ["It was (e.g. this) fine.", "No.", "I mean yes."])
    }

    @Test func numbersDoNotCut() {
        verify("Pi is 3.14 roughly. It costs $1,000.50 today. Version 2. Ok",
               ["Pi is 3.14 roughly.", "It costs $1,000.50 today.", "Version 2.", "Ok"])
        verify("Call 555.123.4567 now.", ["Call 555.123.4567 now."])
    }

    @Test func ellipsisDoesNotCut() {
        verify("Well... I think so. Hmm… maybe. Wait..", ["Well... I think so.", "Hmm… maybe.", "Wait.."])
    }

    @Test func thinkSectionsAreDropped() {
        verify("<think>Let me reason. Step 1.</think>The answer is 4. Ok.", ["The answer is 4.", "Ok."])
        verify("Before. <think>hidden. stuff</think> After.", ["Before.", "After."])
        verify("Start <think>never closed. more text", ["Start"])
        verify("<think></think>Hi.", ["Hi."])
        verify("a <thin b. <b>bold</b> x < y.", ["a <thin b.", "<b>bold</b> x < y."])
        verify("<think>a < b </thin </think>Yes.", ["Yes."])
        verify("<<think>x</think>Hi.", ["<Hi."])
    }

    @Test func citationsAreDropped() {
        verify("The sky is blue【3:0†source】. It is wide【1】!", ["The sky is blue.", "It is wide!"])
        verify("Unclosed 【citation. runs to the end", ["Unclosed"])
    }

    @Test func markdownIsRemoved() {
        verify("**Sure!** Here is `code` and __bold__ text.", ["Sure!", "Here is code and bold text."])
        verify("## Options\n- first item\n- second item.\n* third\n+ fourth\n1. numbered one\n2) numbered two.\n> quoted.",
               ["Options first item second item.", "third fourth numbered one numbered two.", "quoted."])
        verify("  - indented bullet.\n10. tenth.", ["indented bullet.", "tenth."])
        verify("-5 degrees outside. 3.5 is it.", ["-5 degrees outside.", "3.5 is it."])
    }

    @Test func emojiAndNewlinesAreRemoved() {
        verify("Great 😀👍🏽 job!\nSee you 👨‍👩‍👧 soon.\r\nBye ❤️", ["Great job!", "See you soon.", "Bye"])
        verify("Line one\nline two.", ["Line one line two."])
        verify("Keycap 1️⃣ here.", ["Keycap 1 here."])
    }

    @Test func emptyAndPunctuationOnlySentencesAreNeverReturned() {
        verify("", [])
        verify("   \n\n  ", [])
        verify("... !!! ?", [])
        verify("😀. 👍!", [])
        verify("<think>only thoughts</think>", [])
        verify("Hi. . . Bye.", ["Hi.", "Bye."])
    }

    @Test func cjkTerminatorsCutAtOnce() {
        verify("你好。今天好吗？好！", ["你好。", "今天好吗？", "好！"])
    }

    @Test func theRestIsFlushedAtFinish() {
        verify("No terminator at all", ["No terminator at all"])
        verify("Ends with a dot.", ["Ends with a dot."])
    }

    @Test func longSentencesAreCutAtWhitespace() {
        let word = "word "
        let text = String(repeating: word, count: 200)
        let sentences = split([text])
        #expect(sentences.count > 1)
        #expect(sentences.allSatisfy { $0.unicodeScalars.count <= SentenceSplitter.maximumSentenceScalars + word.count })
        #expect(sentences.joined(separator: " ") == text.trimmingSpaces())
    }

    @Test func textWithoutWhitespaceIsCutAtFourTimesTheLimit() {
        let limit = 4 * SentenceSplitter.maximumSentenceScalars
        let text = String(repeating: "x", count: limit + 10)
        #expect(split([text]) == [String(repeating: "x", count: limit), String(repeating: "x", count: 10)])
        // Many spaces at a line start are not all kept: same sentences.
        verify("\n" + String(repeating: " ", count: 50) + "- item.", ["item."])
    }

    @Test func deltasAsAnLLMStreamsThem() {
        let deltas = ["<th", "ink>plan", "</thi", "nk>", "**Hel", "lo**", " Dr", ". Who", "! The", " price is 3", ".", "50 ", "【1", "†src】", " today", ".\n", "- ", "Bye 👋", ""]
        #expect(split(deltas) == ["Hello Dr. Who!", "The price is 3.50 today.", "Bye"])
    }
}

private extension String {
    func trimmingSpaces() -> String {
        var scalars = Substring(self)
        while scalars.last == " " { scalars = scalars.dropLast() }
        while scalars.first == " " { scalars = scalars.dropFirst() }
        return String(scalars)
    }
}
