/// A token bucket on integer milliseconds: `burst` events at once, then `perSecond` a second.
///
/// Pure (the clock is passed in) and allocation-free: a check is a few integer operations, so
/// it can sit in front of anything a peer can cause once per message.
package struct TokenBucket: Sendable, Equatable {
    package let perSecond: UInt64
    package let burst: UInt64
    /// Tokens in thousandths, so a rate below one a millisecond refills without rounding away.
    private var milliTokens: UInt64
    private var refilledAt: UInt64?

    package init(perSecond: UInt64, burst: UInt64) {
        self.perSecond = perSecond
        self.burst = max(1, burst)
        milliTokens = self.burst * 1000
    }

    /// Takes one token if there is one at `now` (ms, monotonic).
    package mutating func take(now: UInt64) -> Bool {
        refill(now: now)
        guard milliTokens >= 1000 else { return false }
        milliTokens -= 1000
        return true
    }

    private mutating func refill(now: UInt64) {
        defer { refilledAt = now }
        guard let last = refilledAt, now > last else { return }
        let capacity = burst * 1000
        // `perSecond` tokens a second are `perSecond` thousandths a millisecond.
        let (gained, overflow) = (now - last).multipliedReportingOverflow(by: perSecond)
        milliTokens = overflow ? capacity : min(capacity, milliTokens + min(gained, capacity))
    }
}
