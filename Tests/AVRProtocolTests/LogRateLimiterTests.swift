import Testing
import AVRProtocol

@Suite struct LogRateLimiterTests {
    @Test func tokenBucketAllowsTheBurstThenTheRate() {
        var bucket = TokenBucket(perSecond: 10, burst: 3)
        #expect((0..<5).map { _ in bucket.take(now: 1_000) } == [true, true, true, false, false])
        // 10 a second: one token every 100 ms, never more than the burst.
        #expect(bucket.take(now: 1_099) == false)
        #expect(bucket.take(now: 1_100) == true)
        #expect(bucket.take(now: 1_100) == false)
        #expect((0..<4).map { _ in bucket.take(now: 100_000) } == [true, true, true, false])
        // A clock that goes back (or a huge gap) neither refills nor overflows.
        #expect(bucket.take(now: 50) == false)
        #expect(bucket.take(now: .max) == true)
    }

    @Test func aFloodOfOneKindIsCountedAndSummarisedWithTheNextLineWritten() {
        var limiter = LogRateLimiter(perSecond: 2, burst: 3)
        var written = 0
        for _ in 0..<1_000 {
            if case .write = limiter.admit(.transcript, now: 0) { written += 1 }
        }
        #expect(written == 3)
        // Other kinds have their own budget.
        #expect(limiter.admit(.serviceError, now: 0) == .write(suppressedBefore: 0))
        // Half a second later one token is back: the line goes out with the count before it.
        #expect(limiter.admit(.transcript, now: 499) == .suppress)
        #expect(limiter.admit(.transcript, now: 500) == .write(suppressedBefore: 998))
        #expect(limiter.admit(.transcript, now: 500) == .suppress)
        #expect(limiter.admit(.dtmf, now: 500) == .write(suppressedBefore: 0))
        // End of the call: what is still held back, by kind; then nothing.
        let left = limiter.drainSuppressed()
        #expect(left.map(\.kind) == [.transcript] && left.map(\.count) == [1])
        #expect(limiter.drainSuppressed().isEmpty)
    }

    @Test func sustainedFloodWritesAboutTheRate() {
        var limiter = LogRateLimiter(perSecond: 2, burst: 20)
        var lines = 0
        // 10 s of 20,000 messages a second: the burst, then 2 lines (and 2 summaries) a second.
        for now in stride(from: UInt64(0), to: 10_000, by: 1) {
            for _ in 0..<20 {
                switch limiter.admit(.invalidDTMF, now: now) {
                case .write(let suppressed): lines += suppressed > 0 ? 2 : 1
                case .suppress: break
                }
            }
        }
        #expect(lines <= 20 + 2 * 2 * 10)
        #expect(lines >= 20 + 2 * 10)
    }
}

/// Peer text as it would reach a text log line: nothing may end the line or drive a terminal.
@Suite struct LogTextEscaperTests {
    @Test func controlCharactersAreEscapedAndTheRestKept() {
        #expect(LogTextEscaper.escape("plain text, é ü 中文, back\\slash") == "plain text, é ü 中文, back\\slash")
        #expect(LogTextEscaper.escape("a\nb\rc\td") == #"a\nb\rc\td"#)
        #expect(LogTextEscaper.escape("\u{1b}[31mred\u{0}\u{7f}") == #"\u{1b}[31mred\u{0}\u{7f}"#)
        #expect(LogTextEscaper.escape("c1:\u{85}\u{9b}\u{80}") == #"c1:\u{85}\u{9b}\u{80}"#)
        #expect(LogTextEscaper.escape("ls\u{2028}ps\u{2029}") == #"ls\u{2028}ps\u{2029}"#)
        // Lead bytes of C1 and separators that start other characters stay as they are.
        #expect(LogTextEscaper.escape("\u{a0}£€\u{2030}") == "\u{a0}£€\u{2030}")
    }

    @Test func aForgedLineStaysInsideItsOwn() {
        let hostile = "hello\n[ERROR]: [00000000-0000-0000-0000-000000000000] forged\r\u{1b}[2K\u{0}"
        let escaped = LogTextEscaper.escape(hostile)
        #expect(!escaped.utf8.contains { $0 < 0x20 || $0 == 0x7f })
        #expect(escaped == #"hello\n[ERROR]: [00000000-0000-0000-0000-000000000000] forged\r\u{1b}[2K\u{0}"#)
        // Every byte from 0x00 to 0x1F escaped, ASCII otherwise kept.
        let all = String(decoding: (0..<128).map { UInt8($0) }, as: UTF8.self)
        let out = LogTextEscaper.escape(all)
        #expect(!out.utf8.contains { $0 < 0x20 || $0 == 0x7f })
        #expect(out.hasSuffix(" !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~\\u{7f}"))
    }
}
