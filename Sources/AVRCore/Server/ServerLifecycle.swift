import Synchronization

/// What every loop of one process shares about its lifecycle: the phase (running, draining,
/// stopping) and the number of AudioSocket connections alive on all loops. The main loop
/// changes the phase and wakes the others; each loop reads it when woken.
package final class ServerLifecycle: Sendable {
    package enum Phase: Int, Sendable { case running = 0, draining = 1, stopping = 2 }

    private let phaseValue = Atomic<Int>(Phase.running.rawValue)
    private let calls = Atomic<Int>(0)

    package init() {}

    package var phase: Phase { Phase(rawValue: phaseValue.load(ordering: .acquiring))! }

    /// Moves forward only (running → draining → stopping); returns whether it moved.
    @discardableResult
    package func advance(to next: Phase) -> Bool {
        var current = phaseValue.load(ordering: .relaxed)
        while current < next.rawValue {
            let (exchanged, original) = phaseValue.compareExchange(expected: current, desired: next.rawValue,
                                                                   ordering: .acquiringAndReleasing)
            if exchanged { return true }
            current = original
        }
        return false
    }

    /// AudioSocket connections alive on every loop (one increment per accept, one decrement
    /// per close: once per call, never per frame).
    package var liveCalls: Int { calls.load(ordering: .relaxed) }
    func callOpened() { calls.add(1, ordering: .relaxed) }
    func callClosed() { calls.subtract(1, ordering: .relaxed) }

    private let lastCallRequestAt = Atomic<UInt64>(0)

    /// A `POST /call` arrived (on any loop) at `now`, monotonic ms (`MonotonicClock`).
    func callRequested(now: UInt64) { lastCallRequestAt.store(now, ordering: .relaxed) }

    /// When the latest `POST /call` arrived (0: none yet).
    var lastCallRequest: UInt64 { lastCallRequestAt.load(ordering: .relaxed) }
}
