import Testing
@testable import AVRProtocol

/// `LineTimeline` counts the silence a held or skipped slot leaves on the line, in whole
/// frames, and nothing for the few milliseconds a held tick waits for a late frame.
@Suite struct LineTimelineTests {
    private static func ms(_ milliseconds: Double) -> UInt64 { UInt64(milliseconds * 1_000_000) }

    @Test func framesOnTheGridLeaveNoHole() {
        var line = LineTimeline()
        for index in 0..<50 {
            #expect(line.sent(samples: 160, at: Self.ms(Double(index) * 20)) == 0)
        }
        // A tick before the last frame has played sends nothing and leaves no hole either.
        #expect(line.nothingSent(at: Self.ms(985)) == 0)
    }

    @Test func aHeldTickFollowedByTheLateFrameIsNoHole() {
        // The transcript of a stream whose frames come a few ms late: each dry tick holds and
        // the frame goes out the moment it arrives (PlayoutController rule 2).
        var line = LineTimeline()
        #expect(line.sent(samples: 160, at: 0) == 0)
        #expect(line.nothingSent(at: Self.ms(19)) == 0)
        #expect(line.sent(samples: 160, at: Self.ms(23)) == 0)
        #expect(line.nothingSent(at: Self.ms(42)) == 0)
        #expect(line.sent(samples: 160, at: Self.ms(43)) == 0)
        #expect(line.nothingSent(at: Self.ms(62)) == 0)
        #expect(line.sent(samples: 160, at: Self.ms(64)) == 0)
    }

    @Test func aHoldOfSeveralTicksCountsEachWholeFrameAsItPasses() {
        var line = LineTimeline()
        #expect(line.sent(samples: 160, at: 0) == 0)
        // The line falls silent at 20 ms; ticks at 20, 40 and 60 ms send nothing.
        #expect(line.nothingSent(at: Self.ms(20)) == 0)
        #expect(line.nothingSent(at: Self.ms(40)) == 160)
        #expect(line.nothingSent(at: Self.ms(60)) == 160)
        // The late audio goes out 7 ms after the last counted frame: not a frame, not counted.
        #expect(line.sent(samples: 160, at: Self.ms(67)) == 0)
        // Back on a grid from there.
        #expect(line.sent(samples: 160, at: Self.ms(87)) == 0)
    }

    @Test func skippedTicksCountTheirFramesBeforeTheNextOne() {
        var line = LineTimeline()
        #expect(line.sent(samples: 160, at: 0) == 0)
        // A loop that stalled: the next frame goes out at 85 ms, three whole frames (and 5 ms)
        // after the line fell silent.
        #expect(line.sent(samples: 160, at: Self.ms(85)) == 480)
        // A catch-up frame follows it directly.
        line.sentBehind(samples: 160)
        #expect(line.sent(samples: 160, at: Self.ms(115)) == 0)
        // A very long hole is counted up to the limit.
        #expect(line.sent(samples: 160, at: Self.ms(5_000)) == line.maximumGapSamples)
    }

    @Test func aShortFrameEndsSooner() {
        var line = LineTimeline()
        // A 138-sample frame plays 17.25 ms; the next frame 2.75 ms later than that is no hole.
        #expect(line.sent(samples: 138, at: 0) == 0)
        #expect(line.sent(samples: 160, at: Self.ms(20)) == 0)
        #expect(line.nothingSent(at: Self.ms(40)) == 0)
        #expect(line.nothingSent(at: Self.ms(60)) == 160)
    }
}
