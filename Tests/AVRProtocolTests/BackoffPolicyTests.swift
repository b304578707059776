import Testing
@testable import AVRProtocol

@Suite struct BackoffPolicyTests {
    @Test func doublesFromTheBaseUpToTheCap() {
        let policy = BackoffPolicy(base: 100, factor: 2, cap: 800)
        #expect((1...6).map { policy.delay(afterFailures: $0) } == [100, 200, 400, 800, 800, 800])
    }

    @Test func aCountBelowOneIsTheFirstWait() {
        let policy = BackoffPolicy(base: 100, cap: 800)
        #expect(policy.delay(afterFailures: 0) == 100)
        #expect(policy.delay(afterFailures: -3) == 100)
    }

    @Test func saturatesInsteadOfOverflowing() {
        let policy = BackoffPolicy(base: 1 << 63, factor: 3, cap: .max)
        #expect(policy.delay(afterFailures: 2) == .max)
        #expect(BackoffPolicy(base: 250, cap: 30_000).delay(afterFailures: 10_000) == 30_000)
        #expect(BackoffPolicy(base: 250, factor: 2, cap: .max).delay(afterFailures: 200) == .max)
    }

    @Test func aBaseAboveTheCapIsCapped() {
        #expect(BackoffPolicy(base: 9_000, cap: 5_000).delay(afterFailures: 1) == 5_000)
    }

    @Test func factorOneIsConstant() {
        let policy = BackoffPolicy(base: 300, factor: 1, cap: 10_000)
        #expect((1...5).map { policy.delay(afterFailures: $0) } == [300, 300, 300, 300, 300])
    }

    // The schedules the server used before they shared this type, written out as they were,
    // compared over every count they can see (and beyond).

    /// Webhook retries: `min(cap, base << (n - 1))` for attempt n (WEBHOOK_RETRY is at most 10).
    @Test func webhookScheduleIsUnchanged() {
        for (base, cap) in [(UInt64(250), UInt64(5_000)), (1, 1), (100, 60_000), (1_000, 1_000)] {
            let policy = WebhookDeliveryStateMachine<Int, Int>.Policy(retries: 10, backoffBase: base, backoffCap: cap,
                                                                     maxQueuedPerCall: 1, maxQueuedTotal: 1)
            for attempt in 1...10 {
                #expect(policy.backoff(afterAttempt: attempt) == min(cap, base << UInt64(attempt - 1)))
            }
        }
        let defaults = WebhookDeliveryStateMachine<Int, Int>.Policy(retries: 10, backoffBase: 250, backoffCap: 5_000,
                                                                   maxQueuedPerCall: 1, maxQueuedTotal: 1)
        #expect((1...7).map { defaults.backoff(afterAttempt: $0) } == [250, 500, 1_000, 2_000, 4_000, 5_000, 5_000])
    }

    /// Redis reconnects: the wait started at the minimum and doubled after each failure in a
    /// row, up to the maximum; a connection reset it.
    @Test func redisScheduleIsUnchanged() {
        for (minimum, maximum) in [(UInt64(100), UInt64(5_000)), (100, 800), (300, 100), (0, 50)] {
            var availability = RedisAvailability(minimumBackoff: minimum, maximumBackoff: maximum)
            var old = minimum
            let oldMaximum = max(minimum, maximum)
            var now: UInt64 = 1_000
            for round in 0..<3 {
                for _ in 0..<12 {
                    #expect(availability.backoff == old)
                    let step = availability.failed(now: now)
                    #expect(step.retryAt == now + old)
                    old = min(oldMaximum, old * 2)
                    now = step.retryAt
                    availability.reconnecting()
                }
                _ = availability.connected(now: now + UInt64(round))
                old = minimum
            }
        }
        let defaults = RedisAvailability()
        #expect(defaults.minimumBackoff == 100 && defaults.maximumBackoff == 5_000)
    }

    /// ASR stream reopens: `min(30_000, 250 << min(k, 7))` for the k-th loss in a row (from 0).
    @Test func asrReopenScheduleIsUnchanged() {
        let policy = BackoffPolicy(base: 250, factor: 2, cap: 30_000)
        for lossesBefore in 0..<40 {
            #expect(policy.delay(afterFailures: lossesBefore + 1) == min(30_000, 250 << min(lossesBefore, 7)))
        }
        #expect((1...9).map { policy.delay(afterFailures: $0) }
                == [250, 500, 1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000])
    }

    /// A listener's paused accept: 50 ms, then doubling per failed retry, up to 1 s.
    @Test func acceptRetryScheduleIsUnchanged() {
        let policy = BackoffPolicy(base: 50, factor: 2, cap: 1_000)
        var old: UInt64 = 50
        for attempt in 1...20 {
            #expect(policy.delay(afterFailures: attempt) == old)
            old = min(old * 2, 1_000)
        }
    }

    @Test func jitterStaysWithinItsShareAndIsReproducible() {
        let policy = BackoffPolicy(base: 1_000, factor: 2, cap: 8_000, jitterPercent: 25)
        var generator = SplitMix64(seed: 7)
        var seen = Set<UInt64>()
        for failures in 1...5 {
            let exact = policy.delay(afterFailures: failures)
            for _ in 0..<200 {
                let wait = policy.delay(afterFailures: failures, using: &generator)
                #expect(wait <= exact && wait >= exact - exact / 4)
                if failures == 4 { seen.insert(wait) }
            }
        }
        #expect(seen.count > 100, "the waits are spread, not one value")
        var first = SplitMix64(seed: 42)
        var second = SplitMix64(seed: 42)
        let a = (1...8).map { policy.delay(afterFailures: $0, using: &first) }
        let b = (1...8).map { policy.delay(afterFailures: $0, using: &second) }
        #expect(a == b, "the same seed gives the same schedule")
    }

    @Test func withoutJitterTheGeneratorChangesNothing() {
        let policy = BackoffPolicy(base: 250, cap: 5_000)
        var generator = SplitMix64(seed: 1)
        #expect((1...6).map { policy.delay(afterFailures: $0, using: &generator) }
                == (1...6).map { policy.delay(afterFailures: $0) })
        #expect(BackoffPolicy(base: 1, cap: 1, jitterPercent: 500).jitterPercent == 100)
    }
}
