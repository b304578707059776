/// The webhook retry policy (README "Webhooks"), without I/O: events of one call (`Key`) are
/// delivered one at a time in the order they were queued; an attempt that fails is retried
/// up to `retries` times after `backoffBase × 2^(n-1)` ms (capped at `backoffCap`); then
/// the event is given up and the call's next one goes. Queues are bounded. Each method is
/// one event and returns what the dispatcher must do; the clock (ms) is passed in.
///
/// Room is reserved for the events that must not be lost (`reserved`: a call's lifecycle
/// events): an ordinary event is refused once the call has `maxQueuedPerCall -
/// reservedPerCall` queued, or all calls `maxQueuedTotal - reservedTotal`; a reserved event
/// may use the whole bound, and at the bound it evicts the call's newest waiting ordinary
/// event instead of being refused. So a call that floods ordinary events still gets its
/// lifecycle events queued; only when a call's queue holds nothing but reserved events, or
/// the server-wide bound is reached with nothing of that call to evict, is one refused.
///
/// `Event` is whatever the dispatcher needs to send and answer an event; the machine only
/// moves it around.
package struct WebhookDeliveryStateMachine<Key: Hashable, Event> {
    package struct Policy: Equatable, Sendable {
        package var retries: Int
        package var backoffBase: UInt64
        package var backoffCap: UInt64
        package var maxQueuedPerCall: Int
        package var maxQueuedTotal: Int
        /// Places of a call's queue only reserved events may take.
        package var reservedPerCall: Int
        /// Places of the whole backlog only reserved events may take.
        package var reservedTotal: Int

        package init(retries: Int, backoffBase: UInt64, backoffCap: UInt64, maxQueuedPerCall: Int, maxQueuedTotal: Int,
                     reservedPerCall: Int = 0, reservedTotal: Int = 0) {
            self.retries = retries
            self.backoffBase = backoffBase
            self.backoffCap = backoffCap
            self.maxQueuedPerCall = maxQueuedPerCall
            self.maxQueuedTotal = maxQueuedTotal
            self.reservedPerCall = reservedPerCall
            self.reservedTotal = reservedTotal
        }

        /// The retry schedule: `backoffBase` doubling per failed attempt, capped at `backoffCap`.
        package var backoff: BackoffPolicy { BackoffPolicy(base: backoffBase, factor: 2, cap: backoffCap) }

        /// The wait after failed attempt `number` (1-based).
        package func backoff(afterAttempt number: Int) -> UInt64 {
            backoff.delay(afterFailures: number)
        }
    }

    package enum Action {
        /// Send `event` (attempt `number`, from 1).
        case attempt(Key, Event, number: Int)
        /// Call `retryDue(key, now:)` after `milliseconds` (attempt `failedAttempt` failed).
        case scheduleRetry(Key, Event, milliseconds: UInt64, failedAttempt: Int)
        /// Every attempt failed (`attempts` of them): log it; `.finish` follows.
        case gaveUp(Key, Event, attempts: Int)
        /// The event is done: answered (`delivered`) or not. Its completion runs now.
        case finish(Event, delivered: Bool)
        /// The queue was full: the event is not queued (`.finish` follows).
        case dropped(Key, Event, queuedForCall: Int, queuedTotal: Int)
        /// Shutdown: cancel every scheduled retry; `count` queued or in-flight events are
        /// dropped.
        case abandoned(count: Int)
    }

    /// One call's queue: the event under way, in its phase, and the ones behind it.
    struct CallQueue {
        enum Phase {
            case attempting(number: Int)
            case backingOff(failedAttempt: Int, due: UInt64)
        }
        var current: Event
        var phase: Phase
        var waiting: [(event: Event, reserved: Bool)] = []
        var count: Int { 1 + waiting.count }
    }

    enum State {
        case running([Key: CallQueue])
        /// After `abandon`: only attempts already in flight still finish.
        case abandoned(inFlight: [Key: Event])
    }

    package let policy: Policy
    private(set) var state: State = .running([:])
    /// Events queued or in flight.
    package private(set) var backlog = 0

    package init(policy: Policy) {
        self.policy = policy
    }

    /// Whether `abandon()` was called.
    package var isAbandoned: Bool {
        if case .abandoned = state { true } else { false }
    }

    /// Events queued for `key`, the one under way included.
    package func queued(for key: Key) -> Int {
        guard case .running(let queues) = state else { return 0 }
        return queues[key]?.count ?? 0
    }

    // MARK: Events

    /// A new event for `key`; `reserved`: one that may use the reserved room (see above).
    package mutating func enqueue(_ event: Event, for key: Key, reserved: Bool = false) -> [Action] {
        guard case .running(var queues) = state else { return [.finish(event, delivered: false)] }
        let forCall = queues[key]?.count ?? 0
        var actions: [Action] = []
        if reserved {
            if forCall >= policy.maxQueuedPerCall || backlog >= policy.maxQueuedTotal {
                guard let index = queues[key]?.waiting.lastIndex(where: { !$0.reserved }) else {
                    return [.dropped(key, event, queuedForCall: forCall, queuedTotal: backlog), .finish(event, delivered: false)]
                }
                let evicted = queues[key]!.waiting.remove(at: index).event
                backlog -= 1
                actions = [.dropped(key, evicted, queuedForCall: forCall, queuedTotal: backlog + 1),
                           .finish(evicted, delivered: false)]
            }
        } else if forCall >= policy.maxQueuedPerCall - policy.reservedPerCall
                    || backlog >= policy.maxQueuedTotal - policy.reservedTotal {
            return [.dropped(key, event, queuedForCall: forCall, queuedTotal: backlog), .finish(event, delivered: false)]
        }
        backlog += 1
        if queues[key] != nil {
            queues[key]!.waiting.append((event, reserved))
            state = .running(queues)
            return actions
        }
        queues[key] = CallQueue(current: event, phase: .attempting(number: 1))
        state = .running(queues)
        return actions + [.attempt(key, event, number: 1)]
    }

    /// The attempt under way for `key` ended: `delivered` (a 2xx answer) or not.
    package mutating func attemptFinished(for key: Key, delivered: Bool, now: UInt64) -> [Action] {
        switch state {
        case .abandoned(var inFlight):
            guard let event = inFlight.removeValue(forKey: key) else { return [] }
            state = .abandoned(inFlight: inFlight)
            return [.finish(event, delivered: delivered)]
        case .running(var queues):
            guard var queue = queues[key], case .attempting(let number) = queue.phase else { return [] }
            if delivered {
                return next(after: queue, key: key, queues: &queues, [.finish(queue.current, delivered: true)])
            }
            if number <= policy.retries {
                let delay = policy.backoff(afterAttempt: number)
                queue.phase = .backingOff(failedAttempt: number, due: now + delay)
                queues[key] = queue
                state = .running(queues)
                return [.scheduleRetry(key, queue.current, milliseconds: delay, failedAttempt: number)]
            }
            return next(after: queue, key: key, queues: &queues,
                        [.gaveUp(key, queue.current, attempts: number), .finish(queue.current, delivered: false)])
        }
    }

    /// The retry timer for `key` fired.
    package mutating func retryDue(for key: Key, now: UInt64) -> [Action] {
        guard case .running(var queues) = state, var queue = queues[key],
              case .backingOff(let failed, let due) = queue.phase else { return [] }
        if now < due {
            return [.scheduleRetry(key, queue.current, milliseconds: due - now, failedAttempt: failed)]
        }
        queue.phase = .attempting(number: failed + 1)
        queues[key] = queue
        state = .running(queues)
        return [.attempt(key, queue.current, number: failed + 1)]
    }

    /// Shutdown after the grace period: nothing new is sent, scheduled retries are
    /// cancelled, everything queued is dropped; attempts in flight still report.
    package mutating func abandon() -> [Action] {
        guard case .running(let queues) = state else { return [] }
        var inFlight: [Key: Event] = [:]
        for (key, queue) in queues {
            if case .attempting = queue.phase { inFlight[key] = queue.current }
        }
        let count = backlog
        backlog = 0
        state = .abandoned(inFlight: inFlight)
        return [.abandoned(count: count)]
    }

    // MARK: Helpers

    /// `queue`'s current event is done: its actions, then the call's next event, if any.
    private mutating func next(after queue: CallQueue, key: Key, queues: inout [Key: CallQueue],
                               _ done: [Action]) -> [Action] {
        backlog -= 1
        var actions = done
        if queue.waiting.isEmpty {
            queues[key] = nil
        } else {
            var rest = queue.waiting
            let event = rest.removeFirst().event
            queues[key] = CallQueue(current: event, phase: .attempting(number: 1), waiting: rest)
            actions.append(.attempt(key, event, number: 1))
        }
        state = .running(queues)
        return actions
    }
}

extension WebhookDeliveryStateMachine: Sendable where Key: Sendable, Event: Sendable {}
extension WebhookDeliveryStateMachine.CallQueue: Sendable where Key: Sendable, Event: Sendable {}
extension WebhookDeliveryStateMachine.CallQueue.Phase: Sendable where Key: Sendable, Event: Sendable {}
extension WebhookDeliveryStateMachine.State: Sendable where Key: Sendable, Event: Sendable {}
extension WebhookDeliveryStateMachine.Action: Sendable where Key: Sendable, Event: Sendable {}
extension WebhookDeliveryStateMachine.Action: Equatable where Key: Equatable, Event: Equatable {}
