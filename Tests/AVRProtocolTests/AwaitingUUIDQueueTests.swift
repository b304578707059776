import Testing
@testable import AVRProtocol

/// Transcripts of the pre-UUID budget: times in ms, ids as the AudioSocket server numbers
/// its connections (1, 2, 3…).
@Suite struct AwaitingUUIDQueueTests {
    typealias Queue = AwaitingUUIDQueue

    @Test func aConnectionWithoutUUIDExpiresAtItsDeadlineNotBefore() {
        var queue = Queue(timeout: 300, capacity: 10)
        let evicted = queue.admit(1, now: 1000)
        #expect(evicted == nil)
        var deadline = queue.nextDeadline()
        #expect(deadline == 1300)
        var expired = queue.expire(now: 1299)
        #expect(expired == [])
        #expect(queue.count == 1)
        expired = queue.expire(now: 1300)
        #expect(expired == [1])
        #expect(queue.count == 0)
        deadline = queue.nextDeadline()
        #expect(deadline == nil)
        expired = queue.expire(now: 5000)
        #expect(expired == [])
    }

    @Test func theUUIDTakesAConnectionOutOfTheQueue() {
        var queue = Queue(timeout: 300, capacity: 10)
        _ = queue.admit(1, now: 0)
        _ = queue.admit(2, now: 100)
        _ = queue.admit(3, now: 200)
        var removed = queue.remove(1)      // UUID within the deadline
        #expect(removed)
        removed = queue.remove(1)     // and its close later: already gone
        #expect(!removed)
        let deadline = queue.nextDeadline()
        #expect(deadline == 400)
        var expired = queue.expire(now: 350)
        #expect(expired == [])
        expired = queue.expire(now: 500)
        #expect(expired == [2, 3])
        #expect(!queue.contains(3))
    }

    @Test func oneSweepClosesEveryConnectionPastItsDeadlineOldestFirst() {
        var queue = Queue(timeout: 5000, capacity: 2000)
        for id in UInt64(1)...1000 { _ = queue.admit(id, now: id) }   // one a millisecond
        var expired = queue.expire(now: 5500)
        #expect(expired == Array(UInt64(1)...500))
        #expect(queue.count == 500)
        let deadline = queue.nextDeadline()
        #expect(deadline == 5501)
        expired = queue.expire(now: 10_000)
        #expect(expired == Array(UInt64(501)...1000))
    }

    @Test func beyondTheCapTheOldestWaitingConnectionIsClosed() {
        var queue = Queue(timeout: 5000, capacity: 3)
        var evicted = queue.admit(1, now: 0)
        #expect(evicted == nil)
        evicted = queue.admit(2, now: 1)
        #expect(evicted == nil)
        evicted = queue.admit(3, now: 2)
        #expect(evicted == nil)
        evicted = queue.admit(4, now: 3)
        #expect(evicted == 1)
        queue.remove(2)                                   // identified: no longer counts
        evicted = queue.admit(5, now: 4)
        #expect(evicted == nil)
        evicted = queue.admit(6, now: 5)              // 2 is skipped: it is a call now
        #expect(evicted == 3)
        #expect(queue.count == 3)
        let expired = queue.expire(now: 6000)
        #expect(expired == [4, 5, 6])
    }

    @Test func fdPressureShedsTheOldestButNoneYoungerThanTheGrace() {
        var queue = Queue(timeout: 5000, capacity: 100, grace: 200)
        for id in UInt64(1)...5 { _ = queue.admit(id, now: 1000 + 100 * id) }   // 1100 … 1500
        queue.remove(1)
        var shed = queue.shed(atMost: 10, now: 1250)          // 2 (1200) is only 50 ms old
        #expect(shed == [])
        shed = queue.shed(atMost: 10, now: 1400)         // 3 (1300) is 100 ms old
        #expect(shed == [2])
        shed = queue.shed(atMost: 1, now: 2000)          // the batch limit
        #expect(shed == [3])
        shed = queue.shed(atMost: 10, now: 2000)
        #expect(shed == [4, 5])
        #expect(queue.count == 0)
        let deadline = queue.nextDeadline()
        #expect(deadline == nil)
    }

    @Test func theGraceIsNeverLongerThanTheTimeout() {
        #expect(Queue(timeout: 100, capacity: 1, grace: 200).grace == 100)
        #expect(Queue(timeout: 5000, capacity: 1).grace == 200)
    }

    @Test func staleRecordsDoNotAccumulateWhileCallsComeAndGo() {
        var queue = Queue(timeout: 5000, capacity: 10)
        // A steady stream of calls, each identified at once, one idle connection waiting.
        _ = queue.admit(0, now: 0)
        for id in UInt64(1)...100_000 {
            _ = queue.admit(id, now: id / 10)
            queue.remove(id)
        }
        #expect(queue.count == 1)
        let expired = queue.expire(now: 5000)
        #expect(expired == [0])
        // Everything is consumed; a new connection starts from an empty queue.
        var deadline = queue.nextDeadline()
        #expect(deadline == nil)
        _ = queue.admit(100_001, now: 20_000)
        deadline = queue.nextDeadline()
        #expect(deadline == 25_000)
    }

    // MARK: The summary line

    @Test func closuresAreSummedUpAtMostOncePerInterval() {
        var summary = Queue.CloseSummary(interval: 1000)
        #expect(summary.dueAt == nil)
        var report = summary.take(now: 0).map(Self.flat)
        #expect(report == nil)
        summary.record(.uuidTimeout)
        #expect(summary.dueAt == 0)                                // the first report is due at once
        report = summary.take(now: 100).map(Self.flat)
        #expect(report == ["uuid_timeout 1"])
        for _ in 0..<998 { summary.record(.uuidTimeout) }
        summary.record(.fdPressure, count: 2)
        #expect(summary.dueAt == 1100)
        report = summary.take(now: 1099).map(Self.flat)
        #expect(report == nil)
        report = summary.take(now: 1100).map(Self.flat)
        #expect(report == ["uuid_timeout 998", "fd_pressure 2"])
        #expect(summary.dueAt == nil)
        summary.record(.waitingLimit)
        report = summary.take(now: 1500).map(Self.flat)
        #expect(report == nil)
        report = summary.take(now: 2100).map(Self.flat)
        #expect(report == ["waiting_limit 1"])
    }

    static func flat(_ counts: [(Queue.CloseReason, Int)]) -> [String] {
        counts.map { "\($0.0.metricLabel) \($0.1)" }
    }
}

