/// Whether the shared registry's Redis can be used now, and when to try again: the pure
/// state behind "Redis down or slow never hurts a call". The caller passes the time in
/// (milliseconds on any monotonic base) and logs what the reports say, so a Redis that
/// stays down costs one log line, not one per call.
///
/// connecting → up (the handshake's PING answered) → down (an operation failed or missed its
/// deadline) → connecting (after the backoff) → up (recovery reported) ...
package struct RedisAvailability: Sendable, Equatable {
    package enum State: Sendable, Equatable { case connecting, up, down }

    /// What the caller should log.
    package enum Report: Sendable, Equatable {
        /// The first connection of the process's life came up.
        case connected
        /// Up again after being down for this long.
        case recovered(downForMilliseconds: UInt64)
        /// Could not be used any more (or never could): the registry falls back to this process.
        case lost
    }

    package private(set) var state: State = .connecting
    /// When the current outage started (nil while up, or before the first connection).
    package private(set) var downSince: UInt64?
    /// The reconnect schedule: `minimumBackoff` doubling per failure in a row, capped at
    /// `maximumBackoff`.
    package let policy: BackoffPolicy
    /// Failures since the connection was last up (or since the start).
    private var failuresInRow = 0
    /// Delay before the next reconnect attempt.
    package var backoff: UInt64 { policy.delay(afterFailures: failuresInRow + 1) }
    package var minimumBackoff: UInt64 { policy.base }
    package var maximumBackoff: UInt64 { policy.cap }
    private var everUp = false
    private var lossReported = false

    package init(minimumBackoff: UInt64 = 100, maximumBackoff: UInt64 = 5_000) {
        policy = BackoffPolicy(base: minimumBackoff, factor: 2, cap: max(minimumBackoff, maximumBackoff))
    }

    /// Operations go to Redis only while it is up; otherwise straight to the local registry.
    package var usable: Bool { state == .up }

    /// The handshake completed.
    package mutating func connected(now: UInt64) -> Report {
        defer {
            state = .up
            everUp = true
            lossReported = false
            downSince = nil
            failuresInRow = 0
        }
        if let since = downSince, everUp || lossReported {
            return .recovered(downForMilliseconds: now >= since ? now - since : 0)
        }
        return .connected
    }

    /// An operation failed, timed out, or the connection went away. Returns the report to log
    /// (only for the first failure of an outage) and when to reconnect; the backoff doubles
    /// with each failure in a row, up to `maximumBackoff`.
    package mutating func failed(now: UInt64) -> (report: Report?, retryAt: UInt64) {
        var report: Report?
        if !lossReported {
            report = .lost
            lossReported = true
        }
        if downSince == nil { downSince = now }
        state = .down
        let retryAt = now + backoff
        failuresInRow += 1
        return (report, retryAt)
    }

    /// A reconnect attempt starts (after the backoff).
    package mutating func reconnecting() {
        state = .connecting
    }

    /// The reconnect gate: a request needs Redis now (a `POST /call` to store, a claim).
    /// Returns true when the caller must start a connection attempt at once rather than wait
    /// for the backoff: only while down. While an attempt is under way the request joins it
    /// (at most one connect in flight, whatever the request rate); while up it just goes.
    /// The backoff keeps governing the attempts nobody asks for (the idle retry timer), so a
    /// Redis that comes back is found by the first request that needs it, and a dead one
    /// costs each request at most the one attempt it joined (bounded by `REDIS_TIMEOUT`).
    package mutating func demanded() -> Bool {
        guard state == .down else { return false }
        state = .connecting
        return true
    }
}

/// Requests in flight on one Redis connection, in the order they were sent (Redis answers
/// in that order), each with its deadline. One TTL for all means the first deadline is the
/// earliest: one timer on `firstDeadline` guards them all.
package struct DeadlineQueue: Sendable {
    private var entries: [(id: UInt64, deadline: UInt64)] = []
    private var head = 0

    package init() {}

    package var count: Int { entries.count - head }
    package var isEmpty: Bool { count == 0 }
    package var firstDeadline: UInt64? { head < entries.count ? entries[head].deadline : nil }

    package mutating func push(id: UInt64, deadline: UInt64) {
        entries.append((id, deadline))
    }

    /// Forgets `id` (normally the first: replies come in order). Returns whether it was there.
    @discardableResult
    package mutating func remove(id: UInt64) -> Bool {
        guard let index = entries[head...].firstIndex(where: { $0.id == id }) else { return false }
        if index == head {
            head += 1
        } else {
            entries.remove(at: index)
        }
        if head == entries.count {
            entries.removeAll(keepingCapacity: true)
            head = 0
        } else if head > 64 && head * 2 > entries.count {
            entries.removeFirst(head)
            head = 0
        }
        return true
    }

    /// True when the oldest request has waited past its deadline: the connection is stuck.
    package func isOverdue(now: UInt64) -> Bool {
        guard let first = firstDeadline else { return false }
        return now >= first
    }

    package mutating func removeAll() {
        entries.removeAll()
        head = 0
    }
}
