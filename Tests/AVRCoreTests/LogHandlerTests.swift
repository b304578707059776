import Logging
import Testing
@testable import AVRCore

@Suite struct LogHandlerTests {
    @Test func textLineKeepsTheAVRShapeWithTheUUIDInBrackets() {
        let line = AVRLogHandler.textLine(level: .warning, message: "Playback ran late",
                                          context: ["uuid": "935652e3-7c59-4edc-b17f-9646a9c2a265", "loop": "1"],
                                          fields: [:])
        #expect(String(decoding: line, as: UTF8.self)
            == "[WARN]: [935652e3-7c59-4edc-b17f-9646a9c2a265] Playback ran late\n")
        let plain = AVRLogHandler.textLine(level: .info, message: "AVR server stopped", context: ["loop": "0"], fields: [:])
        #expect(String(decoding: plain, as: UTF8.self) == "[INFO]: AVR server stopped\n")
        let quality = AVRLogHandler.textLine(level: .info, message: "Call quality", context: [:],
                                             fields: ["frames_in": .stringConvertible(10), "codec": "ULAW"])
        #expect(String(decoding: quality, as: UTF8.self) == "[INFO]: Call quality codec=ULAW frames_in=10\n")
    }

    @Test func jsonLineIsOneObjectWithMetadataAsFields() {
        let line = AVRLogHandler.jsonLine(time: 1_767_268_800_123, level: .error, message: "STS error: \"bad\"\nnext",
                                          context: ["uuid": "abc", "frames": .stringConvertible(3),
                                                    "list": ["a", .stringConvertible(2)], "message": "ignored"])
        #expect(String(decoding: line, as: UTF8.self)
            == #"{"time":"2026-01-01T12:00:00.123Z","level":"error","message":"STS error: \"bad\"\nnext","frames":3,"list":["a",2],"uuid":"abc"}"# + "\n")
    }

    @Test func loggerCarriesUUIDAsMetadataAndHonoursTheLevel() {
        final class Lines: @unchecked Sendable { var all: [String] = [] }
        let lines = Lines()
        let backend = Logging.Logger(label: "test") { _ in
            AVRLogHandler(format: .json) { lines.all.append(String(decoding: $0, as: UTF8.self)) }
        }
        let log = Logger(level: .info, backend: backend).with("loop", "0")
        let call = log.with(uuid: CallUUIDFixture.uuid)
        call.debug("hidden")
        call.info("Call started")
        #expect(lines.all.count == 1)
        #expect(lines.all[0].contains(#""message":"Call started","loop":"0","uuid":"935652e3-7c59-4edc-b17f-9646a9c2a265"}"#))
    }

    /// What a hostile STS or webhook receiver sends: the text line must stay one line.
    @Test func textLineEscapesPeerTextSoNoLineCanBeForged() {
        let hostile = "hi\n[ERROR]: [00000000-0000-0000-0000-000000000000] forged\r\u{1b}[2K\u{0}\u{7f}\u{85}\u{2028}\tend"
        let line = AVRLogHandler.textLine(level: .info, message: "Transcript (agent): " + hostile,
                                          context: ["uuid": "935652e3-7c59-4edc-b17f-9646a9c2a265"],
                                          fields: ["reason": .string("bye\n[WARN]: x")])
        let text = String(decoding: line, as: UTF8.self)
        #expect(text == #"[INFO]: [935652e3-7c59-4edc-b17f-9646a9c2a265] Transcript (agent): hi\n[ERROR]: [00000000-0000-0000-0000-000000000000] forged\r\u{1b}[2K\u{0}\u{7f}\u{85}\u{2028}\tend reason=bye\n[WARN]: x"# + "\n")
        // One line: the only control byte is its final newline.
        #expect(line.filter { $0 < 0x20 || $0 == 0x7f } == [0x0A])
    }

    @Test func jsonLineEscapesEveryControlCharacter() {
        let all = String(decoding: (0..<0x20).map { UInt8($0) }, as: UTF8.self) + "\u{7f}\u{2028}"
        let line = AVRLogHandler.jsonLine(time: 0, level: .info, message: all, context: ["role": .string("\r\n")])
        #expect(line.dropLast().allSatisfy { $0 >= 0x20 })
        let parsed = try? JSONValue.parse(Array(line.dropLast()))
        #expect(parsed?["message"]?.stringValue == all)
        #expect(parsed?["role"]?.stringValue == "\r\n")
    }

    /// A peer sending one message after another: the call's lines of that kind stay within
    /// the budget, and what was held back is summarised.
    @Test func limitedLinesKeepToTheCallsBudgetAndSummariseTheRest() {
        final class Lines: @unchecked Sendable { var all: [String] = [] }
        final class Clock: @unchecked Sendable { var now: UInt64 = 0 }
        let lines = Lines()
        let clock = Clock()
        let backend = Logging.Logger(label: "test") { _ in
            AVRLogHandler(format: .text) { lines.all.append(String(decoding: $0, as: UTF8.self)) }
        }
        var call = Logger(level: .info, backend: backend).with(uuid: CallUUIDFixture.uuid)
        call.setBudget(PeerLogBudget(limiter: LogRateLimiter(perSecond: 1, burst: 2), clock: { clock.now }))
        var built = 0
        for index in 0..<10_000 {
            call.limited(.transcript, .info, { built += 1; return "Transcript (agent): \(index)" }())
        }
        // Hidden lines are not even built.
        #expect(built == 2)
        #expect(lines.all.count == 2)
        // The STS client's logger is made from the call's: it shares the budget.
        let stsLog = call.with("loop", "0")
        stsLog.limited(.transcript, .info, "not written")
        call.limited(.dtmf, .info, "DTMF digit: 1")
        #expect(lines.all.count == 3)
        clock.now = 1_000
        stsLog.limited(.transcript, .info, "Transcript (agent): later")
        #expect(lines.all.suffix(2) == ["[INFO]: [935652e3-7c59-4edc-b17f-9646a9c2a265] suppressed 9999 similar lines (transcript)\n",
                                        "[INFO]: [935652e3-7c59-4edc-b17f-9646a9c2a265] Transcript (agent): later\n"])
        call.limited(.transcript, .info, "held back")
        call.flushSuppressed()
        #expect(lines.all.last == "[INFO]: [935652e3-7c59-4edc-b17f-9646a9c2a265] suppressed 1 similar line (transcript)\n")
        call.flushSuppressed()
        #expect(lines.all.count == 6)
        // Below the level nothing is counted or built.
        call.limited(.transcript, .debug, { built += 1; return "debug" }())
        #expect(built == 2)
    }

    /// The end-of-call summary has the level of the lines it counts, so it shows wherever
    /// they would have (LOG_LEVEL=warn hides info lines).
    @Test func theSummaryAtTheEndOfTheCallHasTheLevelOfItsLines() {
        final class Lines: @unchecked Sendable { var all: [String] = [] }
        let lines = Lines()
        let backend = Logging.Logger(label: "test") { _ in
            AVRLogHandler(format: .text) { lines.all.append(String(decoding: $0, as: UTF8.self)) }
        }
        var call = Logger(level: .warn, backend: backend).with(uuid: CallUUIDFixture.uuid)
        call.setBudget(PeerLogBudget(limiter: LogRateLimiter(perSecond: 1, burst: 1), clock: { 0 }))
        for _ in 0..<5 { call.limited(.invalidDTMF, .warn, "Ignoring a DTMF message with byte 0x5A, which is no DTMF key") }
        for _ in 0..<5 { call.limited(.transcript, .info, "hidden at this level") }
        call.flushSuppressed()
        #expect(lines.all == ["[WARN]: [935652e3-7c59-4edc-b17f-9646a9c2a265] Ignoring a DTMF message with byte 0x5A, which is no DTMF key\n",
                              "[WARN]: [935652e3-7c59-4edc-b17f-9646a9c2a265] suppressed 4 similar lines (invalid_dtmf)\n"])
    }
}

import AVRProtocol
enum CallUUIDFixture {
    static let uuid = CallUUID(string: "935652e3-7c59-4edc-b17f-9646a9c2a265")!
}

@Suite struct LogRedactionTests {
    final class Lines: @unchecked Sendable { var all: [String] = [] }

    @Test(arguments: [LogFormat.text, .json])
    func everyLineHasItsURLsRedacted(format: LogFormat) {
        let lines = Lines()
        let backend = Logging.Logger(label: "test") { _ in
            AVRLogHandler(format: format) { lines.all.append(String(decoding: $0, as: UTF8.self)) }
        }
        let log = Logger(level: .info, backend: backend)
        log.info("Connecting to STS WebSocket: wss://u:p@sts/?token=s3cret&from=2000")
        log.info("Call quality", fields: ["url": "http://h/?k=s3cret", "frames_in": .stringConvertible(3)])
        #expect(lines.all.count == 2)
        #expect(!lines.all.joined().contains("s3cret") && !lines.all.joined().contains("2000") && !lines.all.joined().contains("u:p"))
        #expect(lines.all[0].contains("wss://***@sts/?token=***&from=***"))
        #expect(lines.all[1].contains("http://h/?k=***"))
    }

    @Test func startUpErrorLinesFollowTheFormat() {
        let text = String(decoding: AVRLogHandler.standaloneLine(.error, "STS_URL: \"ws://h/?t=x y\" is bad", format: .text),
                          as: UTF8.self)
        #expect(text == "[ERROR]: STS_URL: \"ws://h/?t=*** y\" is bad\n")
        let json = String(decoding: AVRLogHandler.standaloneLine(.error, "Cannot listen on PORT=5001 (::1): address already in use",
                                                                 format: .json), as: UTF8.self)
        #expect(json.hasPrefix(#"{"time":""#))
        #expect(json.hasSuffix(#"","level":"error","message":"Cannot listen on PORT=5001 (::1): address already in use"}"# + "\n"))
    }
}
