import Testing
@testable import AVRCore

/// The bookkeeping of the drain after a response that ends an HTTP connection.
@Suite struct LingeringCloseTests {
    let bounds = LingeringClose.Bounds(totalMilliseconds: 5_000, idleMilliseconds: 2_000, maxBytes: 1_000)

    @Test func defaultsAreTheDocumentedOnes() {
        let defaults = LingeringClose.Bounds()
        #expect(defaults.totalMilliseconds == 5_000)
        #expect(defaults.idleMilliseconds == 2_000)
        #expect(defaults.maxBytes == 64 * 1024 * 1024)
    }

    @Test func firstWaitIsTheIdleBound() {
        let state = LingeringClose(bounds: bounds, now: 100)
        #expect(state.timeout(now: 100) == 2_000)
        #expect(state.check(now: 2_099) == nil)
        #expect(state.check(now: 2_100) == .idle)
    }

    @Test func inputPostponesTheIdleBound() {
        var state = LingeringClose(bounds: bounds, now: 0)
        #expect(state.discarded(10, now: 1_500) == nil)
        #expect(state.check(now: 2_000) == nil)
        #expect(state.timeout(now: 2_000) == 1_500)
        #expect(state.check(now: 3_499) == nil)
        #expect(state.check(now: 3_500) == .idle)
    }

    @Test func steadyInputEndsAtTheTotalBound() {
        var state = LingeringClose(bounds: bounds, now: 0)
        var now: UInt64 = 0
        while now < 4_500 {
            now += 500
            #expect(state.discarded(1, now: now) == nil)
        }
        // Last input at 4,500: the idle bound would be 6,500, the total one comes first.
        #expect(state.timeout(now: 4_500) == 500)
        #expect(state.check(now: 4_999) == nil)
        #expect(state.check(now: 5_000) == .timeLimit)
        #expect(state.check(now: 9_000) == .timeLimit)
    }

    @Test func byteBudget() {
        var state = LingeringClose(bounds: bounds, now: 0)
        #expect(state.discarded(999, now: 1) == nil)
        #expect(state.discarded(1, now: 2) == .byteLimit)
        #expect(state.discardedBytes == 1_000)
    }

    @Test func aLateTimerWaitsAtLeastOneMillisecond() {
        let state = LingeringClose(bounds: bounds, now: 0)
        #expect(state.timeout(now: 7_000) == 1)
    }

    @Test func inputStampedEarlierThanTheLastDoesNotMoveTheIdleBoundBack() {
        var state = LingeringClose(bounds: bounds, now: 1_000)
        _ = state.discarded(1, now: 900)
        #expect(state.lastInputAt == 1_000)
    }
}
