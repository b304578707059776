/// How long to wait before trying again after failures in a row: `base × factor^(n-1)` ms
/// after the n-th failure, never more than `cap`. Every retry schedule of the server is one
/// of these (webhook retries, Redis reconnects, ASR stream reopens, a listener's paused
/// accepts), so they all grow, saturate and cap the same way.
///
/// Pure: the caller counts the failures and, for a jittered wait, hands in the random source
/// (seed it for a reproducible schedule). With `jitterPercent` 0 (the default) the schedule
/// is exact.
package struct BackoffPolicy: Sendable, Equatable {
    /// The wait after the first failure, ms.
    package var base: UInt64
    /// Growth from one wait to the next (2: doubling).
    package var factor: UInt64
    /// The longest wait, ms.
    package var cap: UInt64
    /// With jitter, the wait is drawn uniformly from `[d − d × jitterPercent / 100, d]`,
    /// `d` the exact wait: retries of many peers that failed together spread out instead of
    /// arriving together. 0–100.
    package var jitterPercent: UInt64

    package init(base: UInt64, factor: UInt64 = 2, cap: UInt64, jitterPercent: UInt64 = 0) {
        self.base = base
        self.factor = factor
        self.cap = cap
        self.jitterPercent = min(jitterPercent, 100)
    }

    /// The exact wait after the `failures`-th failure in a row (1 for the first; 0 or less
    /// counts as 1). Saturates instead of overflowing: any count is safe.
    package func delay(afterFailures failures: Int) -> UInt64 {
        var wait = min(base, cap)
        var step = 1
        while step < failures && wait < cap {
            let (grown, overflow) = wait.multipliedReportingOverflow(by: factor)
            wait = overflow ? cap : min(grown, cap)
            if factor <= 1 { break }
            step += 1
        }
        return wait
    }

    /// The wait after the `failures`-th failure, less a random part of up to `jitterPercent`
    /// percent of it, drawn from `generator`.
    package func delay<Generator: RandomNumberGenerator>(afterFailures failures: Int,
                                                         using generator: inout Generator) -> UInt64 {
        let exact = delay(afterFailures: failures)
        let spread = exact / 100 * jitterPercent + exact % 100 * jitterPercent / 100
        guard spread > 0 else { return exact }
        return exact - UInt64.random(in: 0...spread, using: &generator)
    }
}
