/// How an AudioSocket call decides its route from the shared registry's answers: the pure
/// part of the claim (the caller runs the `GETDEL`s and the timer, and passes the time in).
///
/// After each answer the caller also takes the uuid out of this instance's registry and says
/// whether it was there. A route found in Redis wins; else the local one. A miss in both
/// places may only mean that the `SET` of a `POST /call` (on this instance or another) is
/// still on its way to Redis: the claim asks once more after `retryDelay`
/// (`REDIS_CLAIM_RETRY_MS`) before the call goes on without a route. A Redis that cannot
/// answer is never asked again (it already cost the call its deadline).
///
///     asking --found--> useShared
///     asking --absent, local hit--> useLocal
///     asking --unavailable--> useLocal (whatever the local registry had)
///     asking --absent, no local, first answer, retryDelay > 0--> askAgain(at: now + retryDelay) --> asking
///     asking --absent, no local, otherwise--> useLocal (no route: the call uses STS_URL)
package struct RouteClaim: Sendable, Equatable {
    /// What Redis said to a `GETDEL`.
    package enum SharedAnswer: Sendable, Equatable {
        case found
        case absent
        /// Down, slow, or an error reply.
        case unavailable
    }

    package enum Next: Sendable, Equatable {
        /// The route Redis returned.
        case useShared
        /// The route this instance's registry returned, or none.
        case useLocal
        /// Ask Redis again at this time (ms, the caller's clock).
        case askAgain(at: UInt64)
    }

    /// Wait before the second `GETDEL` (ms); 0: never ask twice.
    package let retryDelay: UInt64
    /// Answers received so far.
    package private(set) var answers = 0

    package init(retryDelay: UInt64) {
        self.retryDelay = retryDelay
    }

    /// Redis answered the latest `GETDEL` at `now`; `foundLocally`: this instance's registry
    /// had the uuid (it was taken out).
    package mutating func answered(_ answer: SharedAnswer, foundLocally: Bool, now: UInt64) -> Next {
        answers += 1
        switch answer {
        case .found:
            return .useShared
        case .unavailable:
            return .useLocal
        case .absent:
            if foundLocally || answers > 1 || retryDelay == 0 { return .useLocal }
            return .askAgain(at: now + retryDelay)
        }
    }
}
