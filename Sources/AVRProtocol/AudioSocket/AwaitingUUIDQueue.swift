/// The AudioSocket connections of one loop that have not sent their UUID yet, oldest first,
/// with the three ways such a connection is closed before it becomes a call:
///
/// - **deadline**: Asterisk sends the UUID as the very first message, right after connecting;
///   a connection that has not sent it `timeout` after it was accepted is not Asterisk (or is
///   a broken one) and `expire(now:)` hands it back to be closed;
/// - **cap**: at most `capacity` connections wait at once; admitting one more hands back the
///   oldest waiting one (`admit`);
/// - **fd pressure**: when accepting fails for lack of file descriptors, `shed` hands back the
///   oldest waiting ones, never one younger than `grace` (its UUID may be in the socket
///   buffer, unread yet: the loop reads it on its next turn).
///
/// One timeout for every connection, so acceptance order is deadline order: a FIFO plus one
/// timer per loop does the work of a timer per connection. Connections that leave the queue
/// otherwise (UUID received, closed) stay in the FIFO as stale records, skipped when they
/// reach the front; the FIFO holds at most the connections accepted within the last `timeout`.
///
/// Pure: ids are the caller's (any increasing counter), times are milliseconds passed in.
package struct AwaitingUUIDQueue: Sendable {
    package let timeout: UInt64
    package let capacity: Int
    /// Under fd pressure, connections younger than this are left alone (ms).
    package let grace: UInt64

    /// Acceptance order; records of connections no longer waiting are skipped lazily.
    private var order: [(id: UInt64, acceptedAt: UInt64)] = []
    private var head = 0
    private var waiting: Set<UInt64> = []

    package init(timeout: UInt64, capacity: Int, grace: UInt64 = 200) {
        precondition(capacity > 0, "capacity must be positive")
        self.timeout = timeout
        self.capacity = capacity
        self.grace = min(grace, timeout)
    }

    /// Connections waiting for their UUID.
    package var count: Int { waiting.count }

    package func contains(_ id: UInt64) -> Bool { waiting.contains(id) }

    /// When the oldest waiting connection's deadline passes, if any connection waits
    /// (stale records at the front are dropped on the way).
    package mutating func nextDeadline() -> UInt64? {
        while head < order.count {
            if waiting.contains(order[head].id) { return order[head].acceptedAt + timeout }
            head += 1
        }
        return nil
    }

    /// A connection was accepted at `now`. Returns the oldest waiting connection when the
    /// queue was full (the caller closes it), nil otherwise.
    package mutating func admit(_ id: UInt64, now: UInt64) -> UInt64? {
        var evicted: UInt64?
        if waiting.count >= capacity { evicted = popOldest() }
        waiting.insert(id)
        order.append((id, now))
        return evicted
    }

    /// The connection no longer waits (its UUID arrived, or it closed). Returns whether it did.
    @discardableResult
    package mutating func remove(_ id: UInt64) -> Bool {
        let removed = waiting.remove(id) != nil
        if waiting.isEmpty { reset() }
        return removed
    }

    /// Takes out and returns the connections whose deadline is `now` or earlier, oldest first.
    package mutating func expire(now: UInt64) -> [UInt64] {
        var expired: [UInt64] = []
        while head < order.count, order[head].acceptedAt + timeout <= now {
            let id = order[head].id
            head += 1
            if waiting.remove(id) != nil { expired.append(id) }
        }
        compact()
        return expired
    }

    /// Under fd pressure: takes out and returns up to `limit` of the oldest waiting
    /// connections accepted at least `grace` before `now`.
    package mutating func shed(atMost limit: Int, now: UInt64) -> [UInt64] {
        var shed: [UInt64] = []
        while shed.count < limit, head < order.count, order[head].acceptedAt + grace <= now {
            let id = order[head].id
            head += 1
            if waiting.remove(id) != nil { shed.append(id) }
        }
        compact()
        return shed
    }

    private mutating func popOldest() -> UInt64? {
        while head < order.count {
            let id = order[head].id
            head += 1
            if waiting.remove(id) != nil { return id }
        }
        return nil
    }

    /// Drops the consumed prefix once it dominates the FIFO (amortised O(1) per connection).
    private mutating func compact() {
        if waiting.isEmpty {
            reset()
        } else if head > 1024 && head * 2 > order.count {
            order.removeFirst(head)
            head = 0
        }
    }

    private mutating func reset() {
        order.removeAll(keepingCapacity: order.capacity <= 4096)
        head = 0
    }
}

extension AwaitingUUIDQueue {
    /// Why a connection was closed before it sent its UUID.
    package enum CloseReason: CaseIterable, Sendable {
        /// `timeout` passed.
        case uuidTimeout
        /// `capacity` connections were already waiting.
        case waitingLimit
        /// Accepting failed for lack of file descriptors.
        case fdPressure

        /// The `reason` label of `avr_audiosocket_unidentified_closed_total`.
        package var metricLabel: String {
            switch self {
            case .uuidTimeout: "uuid_timeout"
            case .waitingLimit: "waiting_limit"
            case .fdPressure: "fd_pressure"
            }
        }
    }

    /// Closures counted for one log line, reported at most once per `interval`: a thousand
    /// connections that never send a UUID make a few summary lines, not a thousand.
    package struct CloseSummary: Sendable {
        package let interval: UInt64
        /// Closed since the last report, by reason (in `CloseReason.allCases` order).
        package private(set) var pending: [Int] = Array(repeating: 0, count: CloseReason.allCases.count)
        private var lastReport: UInt64?

        package init(interval: UInt64 = 1000) { self.interval = interval }

        package var pendingTotal: Int { pending.reduce(0, +) }

        package mutating func record(_ reason: CloseReason, count: Int = 1) {
            pending[CloseReason.allCases.firstIndex(of: reason)!] += count
        }

        /// When the pending counts are due (nil when nothing is pending): at once for the
        /// first report, then `interval` after the previous one.
        package var dueAt: UInt64? {
            guard pendingTotal > 0 else { return nil }
            return lastReport.map { $0 + interval } ?? 0
        }

        /// The counts to report now, by reason (zeros left out), if they are due; they are reset.
        package mutating func take(now: UInt64) -> [(CloseReason, Int)]? {
            guard let due = dueAt, due <= now else { return nil }
            let report = zip(CloseReason.allCases, pending).filter { $0.1 > 0 }
            pending = Array(repeating: 0, count: pending.count)
            lastReport = now
            return report
        }
    }
}
