import Testing
@testable import AVRProtocol

@Suite struct PacingClockTests {
    static let interval: UInt64 = 20_000_000

    @Test func firstFrameIsDueAtTheStart() {
        var clock = PacingClock(start: 1_000)
        #expect(clock.framesDue(now: 999) == 0)
        #expect(clock.framesDue(now: 1_000) == 1)
        #expect(clock.nextDeadline == 1_000 + Self.interval)
        #expect(clock.framesDue(now: 1_000 + Self.interval - 1) == 0)
        #expect(clock.delayUntilNextDeadline(now: 1_000 + Self.interval - 5) == 5)
        #expect(clock.framesDue(now: 1_000 + Self.interval) == 1)
        #expect(clock.delayUntilNextDeadline(now: 1_000 + 5 * Self.interval) == 0)
    }

    @Test func tenMinutesOfJitteryWakeUpsHaveNoDrift() {
        let start: UInt64 = 123_456_789_000
        var clock = PacingClock(start: start)
        var random = TestRandom(seed: 99)
        var now = start
        var sent = 0
        var wakeUps = 0
        while sent < 30_000 {
            // The timer fires late by 0–4 ms, or sometimes up to 1 ms early (nothing due yet).
            let jitter = Int64(random.int(in: -1_000_000...4_000_000))
            now = UInt64(Int64(clock.nextDeadline) + jitter)
            sent += clock.framesDue(now: now)
            wakeUps += 1
            #expect(clock.nextDeadline > now)
        }
        // Every frame due by `now` has been sent, and no more: still exactly on the grid.
        #expect(sent == Int((now - start) / Self.interval) + 1)
        #expect(clock.nextDeadline == start + UInt64(sent) * Self.interval)
        // 30 000 frames took 10 minutes of clock time, to within one wake-up's jitter.
        let elapsed = Int64(now - start) - Int64(29_999) * Int64(Self.interval)
        #expect(elapsed >= -1_000_000 && elapsed <= 4_000_000)
        #expect(clock.framesSkipped == 0)
        #expect(clock.framesSent == 30_000)
        #expect(wakeUps > 30_000)
    }

    @Test func stallSendsAtMostMaxCatchUpThenResumesOnTheGrid() {
        let start: UInt64 = 5_000_000_000
        var clock = PacingClock(start: start)
        for frame in 0..<50 {
            #expect(clock.framesDue(now: start + UInt64(frame) * Self.interval + 1_000) == 1)
        }
        // Next deadline: frame 50. The loop stalls for 2 s.
        let late = start + 50 * Self.interval + 2_000_000_000
        #expect(clock.framesDue(now: late) == 3)
        // 101 frames were due (50…150); 3 sent, 98 skipped.
        #expect(clock.framesSkipped == 98)
        #expect(clock.nextDeadline == start + 151 * Self.interval)
        #expect(clock.framesDue(now: late + 1) == 0)
        #expect(clock.framesDue(now: start + 151 * Self.interval) == 1)
        #expect(clock.framesSent == 50 + 3 + 1)
    }

    @Test func smallLatenessCatchesUpFully() {
        var clock = PacingClock(start: 0, maxCatchUp: 3)
        #expect(clock.framesDue(now: 0) == 1)
        // 50 ms late for the frame due at 20 ms: frames at 20, 40, 60 are due.
        #expect(clock.framesDue(now: 60_000_000) == 3)
        #expect(clock.framesSkipped == 0)
        #expect(clock.framesDue(now: 79_999_999) == 0)
        // 4 due → 3 sent, 1 skipped.
        #expect(clock.framesDue(now: 140_000_000) == 3)
        #expect(clock.framesSkipped == 1)
        #expect(clock.nextDeadline == 160_000_000)
    }
}
