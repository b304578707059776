import Testing
import AVRProtocol

/// Transcripts of the webhook retry policy: one event in, the actions out.
@Suite struct WebhookDeliveryStateMachineTests {
    typealias Machine = WebhookDeliveryStateMachine<String, String>

    func machine(retries: Int = 2, perCall: Int = 256, total: Int = 100_000) -> Machine {
        Machine(policy: .init(retries: retries, backoffBase: 250, backoffCap: 5_000,
                              maxQueuedPerCall: perCall, maxQueuedTotal: total))
    }

    @Test func aDeliveredEventFinishesAndFreesTheCall() {
        var m = machine()
        #expect(m.enqueue("call_initiated", for: "A") == [.attempt("A", "call_initiated", number: 1)])
        #expect(m.backlog == 1 && m.queued(for: "A") == 1)
        #expect(m.attemptFinished(for: "A", delivered: true, now: 10) == [.finish("call_initiated", delivered: true)])
        #expect(m.backlog == 0 && m.queued(for: "A") == 0)
        // A stale report for a call with nothing under way does nothing.
        #expect(m.attemptFinished(for: "A", delivered: true, now: 11) == [])
    }

    @Test func eventsOfOneCallGoInOrderOneAtATime() {
        var m = machine()
        #expect(m.enqueue("call_started", for: "A") == [.attempt("A", "call_started", number: 1)])
        #expect(m.enqueue("transcription", for: "A") == [])
        #expect(m.enqueue("call_ended", for: "A") == [])
        // Another call is independent.
        #expect(m.enqueue("call_started", for: "B") == [.attempt("B", "call_started", number: 1)])
        #expect(m.backlog == 4)
        #expect(m.attemptFinished(for: "A", delivered: true, now: 0) == [
            .finish("call_started", delivered: true), .attempt("A", "transcription", number: 1),
        ])
        // A failure without retries gives the event up; the next one still goes.
        var once = machine(retries: 0)
        _ = once.enqueue("x", for: "A")
        _ = once.enqueue("y", for: "A")
        #expect(once.attemptFinished(for: "A", delivered: false, now: 0) == [
            .gaveUp("A", "x", attempts: 1), .finish("x", delivered: false), .attempt("A", "y", number: 1),
        ])
        #expect(m.attemptFinished(for: "A", delivered: true, now: 0) == [
            .finish("transcription", delivered: true), .attempt("A", "call_ended", number: 1),
        ])
        #expect(m.attemptFinished(for: "A", delivered: true, now: 0) == [.finish("call_ended", delivered: true)])
        #expect(m.backlog == 1)
    }

    @Test func failedAttemptsBackOffExponentiallyThenGiveUp() {
        var m = machine(retries: 2)
        _ = m.enqueue("call_ended", for: "A")
        _ = m.enqueue("next", for: "A")
        #expect(m.attemptFinished(for: "A", delivered: false, now: 1_000) == [
            .scheduleRetry("A", "call_ended", milliseconds: 250, failedAttempt: 1),
        ])
        // A timer that fires early (it cannot on libuv, but the clock decides) waits the rest.
        #expect(m.retryDue(for: "A", now: 1_100) == [.scheduleRetry("A", "call_ended", milliseconds: 150, failedAttempt: 1)])
        #expect(m.retryDue(for: "A", now: 1_250) == [.attempt("A", "call_ended", number: 2)])
        // Nothing is attempted twice: a second fire finds no back-off.
        #expect(m.retryDue(for: "A", now: 1_300) == [])
        #expect(m.attemptFinished(for: "A", delivered: false, now: 2_000) == [
            .scheduleRetry("A", "call_ended", milliseconds: 500, failedAttempt: 2),
        ])
        #expect(m.retryDue(for: "A", now: 2_500) == [.attempt("A", "call_ended", number: 3)])
        #expect(m.attemptFinished(for: "A", delivered: false, now: 3_000) == [
            .gaveUp("A", "call_ended", attempts: 3), .finish("call_ended", delivered: false), .attempt("A", "next", number: 1),
        ])
    }

    @Test func aRetryThatSucceedsFinishesDelivered() {
        var m = machine(retries: 1)
        _ = m.enqueue("e", for: "A")
        _ = m.attemptFinished(for: "A", delivered: false, now: 0)
        #expect(m.retryDue(for: "A", now: 250) == [.attempt("A", "e", number: 2)])
        #expect(m.attemptFinished(for: "A", delivered: true, now: 300) == [.finish("e", delivered: true)])
    }

    @Test func backoffIsCapped() {
        let policy = machine().policy
        #expect((1...6).map { policy.backoff(afterAttempt: $0) } == [250, 500, 1_000, 2_000, 4_000, 5_000])
    }

    @Test func queuesAreBoundedPerCallAndInAll() {
        var m = machine(perCall: 2, total: 3)
        _ = m.enqueue("1", for: "A")
        _ = m.enqueue("2", for: "A")
        #expect(m.enqueue("3", for: "A") == [.dropped("A", "3", queuedForCall: 2, queuedTotal: 2), .finish("3", delivered: false)])
        #expect(m.enqueue("b1", for: "B") == [.attempt("B", "b1", number: 1)])
        #expect(m.enqueue("c1", for: "C") == [.dropped("C", "c1", queuedForCall: 0, queuedTotal: 3), .finish("c1", delivered: false)])
        #expect(m.queued(for: "C") == 0)
        #expect(m.backlog == 3)
    }

    @Test func abandonDropsTheQueuesAndLetsInFlightAttemptsReport() {
        var m = machine(retries: 3)
        _ = m.enqueue("a1", for: "A")
        _ = m.enqueue("a2", for: "A")
        _ = m.enqueue("b1", for: "B")
        _ = m.attemptFinished(for: "B", delivered: false, now: 0)  // B backs off
        #expect(m.abandon() == [.abandoned(count: 3)])
        #expect(m.isAbandoned && m.backlog == 0)
        #expect(m.abandon() == [])
        // Nothing new is sent; the caller hears at once.
        #expect(m.enqueue("late", for: "C") == [.finish("late", delivered: false)])
        // B's retry is cancelled (its timer closed); a stray fire does nothing.
        #expect(m.retryDue(for: "B", now: 10_000) == [])
        // A's attempt in flight still reports, without retry, and once.
        #expect(m.attemptFinished(for: "A", delivered: false, now: 1) == [.finish("a1", delivered: false)])
        #expect(m.attemptFinished(for: "A", delivered: true, now: 2) == [])
    }

    /// A call flooding per-message events fills its queue; its lifecycle events still get in:
    /// ordinary events stop short of the reserved places, and at the bound a reserved event
    /// evicts the call's newest waiting ordinary one instead of being refused.
    @Test func lifecycleEventsHaveRoomReservedAndEvictPerMessageOnes() {
        var m = Machine(policy: .init(retries: 0, backoffBase: 250, backoffCap: 5_000, maxQueuedPerCall: 4,
                                      maxQueuedTotal: 100, reservedPerCall: 1, reservedTotal: 0))
        #expect(m.enqueue("call_started", for: "A", reserved: true) == [.attempt("A", "call_started", number: 1)])
        _ = m.enqueue("t1", for: "A")
        _ = m.enqueue("t2", for: "A")
        // 3 queued: the last place is reserved.
        #expect(m.enqueue("t3", for: "A") == [.dropped("A", "t3", queuedForCall: 3, queuedTotal: 3), .finish("t3", delivered: false)])
        #expect(m.enqueue("call_ended", for: "A", reserved: true) == [])
        #expect(m.queued(for: "A") == 4)
        // Full: a further reserved event evicts t2, the newest ordinary one waiting.
        #expect(m.enqueue("call_initiated", for: "A", reserved: true)
            == [.dropped("A", "t2", queuedForCall: 4, queuedTotal: 4), .finish("t2", delivered: false)])
        #expect(m.queued(for: "A") == 4 && m.backlog == 4)
        // Delivered in order: t1, then the lifecycle events.
        #expect(m.attemptFinished(for: "A", delivered: true, now: 1) == [.finish("call_started", delivered: true), .attempt("A", "t1", number: 1)])
        #expect(m.attemptFinished(for: "A", delivered: true, now: 2) == [.finish("t1", delivered: true), .attempt("A", "call_ended", number: 1)])
        #expect(m.attemptFinished(for: "A", delivered: true, now: 3) == [.finish("call_ended", delivered: true), .attempt("A", "call_initiated", number: 1)])
        // Nothing ordinary left to evict: a reserved event at the bound is refused, and said so.
        var full = Machine(policy: .init(retries: 0, backoffBase: 250, backoffCap: 5_000, maxQueuedPerCall: 2,
                                         maxQueuedTotal: 100, reservedPerCall: 1, reservedTotal: 0))
        _ = full.enqueue("s", for: "B", reserved: true)
        _ = full.enqueue("e", for: "B", reserved: true)
        #expect(full.enqueue("x", for: "B", reserved: true) == [.dropped("B", "x", queuedForCall: 2, queuedTotal: 2), .finish("x", delivered: false)])
    }

    @Test func theServerWideBoundAlsoKeepsRoomForLifecycleEvents() {
        var m = Machine(policy: .init(retries: 0, backoffBase: 250, backoffCap: 5_000, maxQueuedPerCall: 100,
                                      maxQueuedTotal: 3, reservedPerCall: 0, reservedTotal: 1))
        _ = m.enqueue("a1", for: "A")
        _ = m.enqueue("a2", for: "A")
        #expect(m.enqueue("b1", for: "B") == [.dropped("B", "b1", queuedForCall: 0, queuedTotal: 2), .finish("b1", delivered: false)])
        #expect(m.enqueue("call_ended", for: "B", reserved: true) == [.attempt("B", "call_ended", number: 1)])
        // Full in all: A's call_ended evicts A's waiting a2 (a1 is under way).
        #expect(m.enqueue("call_ended", for: "A", reserved: true)
            == [.dropped("A", "a2", queuedForCall: 2, queuedTotal: 3), .finish("a2", delivered: false)])
        #expect(m.backlog == 3)
    }
}
