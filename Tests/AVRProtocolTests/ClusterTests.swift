import Testing
@testable import AVRProtocol

@Suite struct RedisURLTests {
    @Test func plainHostAndDefaults() throws {
        let url = try RedisURL.parse("redis://cache")
        #expect(url == RedisURL(host: "cache", port: 6379, password: nil, database: 0))
        #expect(url.description == "redis://cache:6379")
    }

    @Test func passwordPortDatabase() throws {
        let url = try RedisURL.parse("redis://:s%40cret@10.0.0.5:6380/3")
        #expect(url == RedisURL(host: "10.0.0.5", port: 6380, password: "s@cret", database: 3))
        #expect(url.description == "redis://:***@10.0.0.5:6380/3")
        #expect(try RedisURL.parse("redis://user:pw@h").password == "pw")
        #expect(try RedisURL.parse("redis://[::1]:7000/").host == "::1")
        #expect(try RedisURL.parse("redis://[::1]:7000/").description == "redis://[::1]:7000")
    }

    @Test func refusals() {
        for text in ["http://h", "rediss://h", "redis://", "redis://h:0", "redis://h:99999", "redis://h/x",
                     "redis://h/1?x=1", "redis://:%zz@h", "redis://[::1", "redis://h h"] {
            #expect(throws: RedisURL.ParseError.self, "\(text)") { try RedisURL.parse(text) }
        }
    }

    @Test func configurationErrorNeverShowsThePassword() {
        do {
            _ = try Configuration.parse(environment: ["REDIS_URL": "redis://:topsecret@h:0"], fileExists: { _ in false })
            Issue.record("accepted")
        } catch {
            #expect(error.description.hasPrefix("REDIS_URL: "))
            #expect(!error.description.contains("topsecret"))
        }
    }

    @Test func clusterSettings() throws {
        let configuration = try Configuration.parse(
            environment: ["REDIS_URL": "redis://r:1", "REDIS_KEY_PREFIX": "pbx1:", "REDIS_TIMEOUT": "50",
                          "DRAIN_TIMEOUT": "0"], fileExists: { _ in false })
        #expect(configuration.redisURL == RedisURL(host: "r", port: 1))
        #expect(configuration.redisKeyPrefix == "pbx1:")
        #expect(configuration.redisTimeoutMilliseconds == 50)
        #expect(configuration.drainTimeoutSeconds == 0)
        let defaults = Configuration()
        #expect(defaults.drainTimeoutSeconds == 300 && defaults.redisTimeoutMilliseconds == 250 && defaults.redisURL == nil)
        #expect(throws: ConfigurationError.self) {
            try Configuration.parse(environment: ["REDIS_KEY_PREFIX": "a b"], fileExists: { _ in false })
        }
        #expect(throws: ConfigurationError.self) {
            try Configuration.parse(environment: ["DRAIN_TIMEOUT": "-1"], fileExists: { _ in false })
        }
    }
}

@Suite struct RedisAvailabilityTests {
    @Test func firstConnectionThenOutageThenRecovery() {
        var availability = RedisAvailability(minimumBackoff: 100, maximumBackoff: 800)
        #expect(!availability.usable)
        let r1 = availability.connected(now: 10)
        #expect(r1 == .connected)
        #expect(availability.usable)
        // The first failure of an outage is reported; the following ones are not.
        let first = availability.failed(now: 1_000)
        #expect(first.report == .lost && first.retryAt == 1_100)
        #expect(!availability.usable)
        availability.reconnecting()
        #expect(!availability.usable)
        let second = availability.failed(now: 1_100)
        #expect(second.report == nil && second.retryAt == 1_300)
        availability.reconnecting()
        let r2 = availability.failed(now: 1_300)
        #expect(r2.retryAt == 1_700)
        availability.reconnecting()
        let r3 = availability.failed(now: 1_700)
        #expect(r3.retryAt == 2_500)
        availability.reconnecting()
        let r4 = availability.failed(now: 2_500)
        #expect(r4.retryAt == 3_300, "capped at the maximum backoff")
        availability.reconnecting()
        // Recovery reports how long the outage lasted (from its first failure) and resets the backoff.
        let r5 = availability.connected(now: 3_400)
        #expect(r5 == .recovered(downForMilliseconds: 2_400))
        #expect(availability.usable)
        let again = availability.failed(now: 5_000)
        #expect(again.report == .lost && again.retryAt == 5_100)
    }

    @Test func neverReachableIsReportedOnceThenRecovery() {
        var availability = RedisAvailability(minimumBackoff: 100, maximumBackoff: 5_000)
        let r6 = availability.failed(now: 0)
        #expect(r6.report == .lost)
        availability.reconnecting()
        let r7 = availability.failed(now: 100)
        #expect(r7.report == nil)
        availability.reconnecting()
        let r8 = availability.connected(now: 400)
        #expect(r8 == .recovered(downForMilliseconds: 400))
    }
}

@Suite struct DeadlineQueueTests {
    @Test func oldestDeadlineGuardsTheQueue() {
        var queue = DeadlineQueue()
        #expect(queue.firstDeadline == nil && !queue.isOverdue(now: .max))
        queue.push(id: 1, deadline: 250)
        queue.push(id: 2, deadline: 260)
        queue.push(id: 3, deadline: 270)
        #expect(!queue.isOverdue(now: 249))
        #expect(queue.isOverdue(now: 250))
        let r9 = queue.remove(id: 1)
        #expect(r9)
        #expect(queue.firstDeadline == 260)
        let r10 = queue.remove(id: 3)
        #expect(r10, "out of order (never with Redis, but harmless)")
        let again = queue.remove(id: 3)
        #expect(!again)
        #expect(queue.firstDeadline == 260 && queue.count == 1)
        let r11 = queue.remove(id: 2)
        #expect(r11)
        #expect(queue.isEmpty && queue.firstDeadline == nil)
    }

    @Test func longRunStaysCompact() {
        var queue = DeadlineQueue()
        for id in UInt64(0)..<10_000 {
            queue.push(id: id, deadline: id + 250)
            if id >= 3 {
                let removed = queue.remove(id: id - 3)
                #expect(removed)
            }
        }
        #expect(queue.count == 3 && queue.firstDeadline == 9_997 + 250)
    }
}

@Suite struct RouteRecordTests {
    @Test func roundTripKeepsPayloadOrderAndNumbers() throws {
        var payload = JSONObject()
        payload.append(key: "to", value: "5001")
        payload.append(key: "from", value: "2000")
        payload.append(key: "uniqueid", value: .number("1770758888.32"))
        payload.append(key: "extra", value: .object(["a": [1, 2]]))
        let record = RouteRecord(payload: payload, stsURL: "ws://sts/?to=5001", overridden: true)
        let bytes = record.encoded()
        #expect(String(decoding: bytes, as: UTF8.self)
            == #"{"v":1,"payload":{"to":"5001","from":"2000","uniqueid":1770758888.32,"extra":{"a":[1,2]}},"sts_url":"ws://sts/?to=5001","override":true}"#)
        #expect(try RouteRecord.decode(bytes) == record)
        let noSTS = RouteRecord(payload: [:], stsURL: nil, overridden: false)
        #expect(try RouteRecord.decode(noSTS.encoded()) == noSTS)
    }

    @Test func foreignValuesAreRefused() {
        for text in ["", "[]", #"{"v":2,"payload":{},"sts_url":null,"override":false}"#,
                     #"{"v":1,"payload":[],"sts_url":null,"override":false}"#,
                     #"{"v":1,"payload":{},"sts_url":5,"override":false}"#,
                     #"{"v":1,"payload":{},"sts_url":null}"#] {
            #expect(throws: RouteRecord.DecodeError.self, "\(text)") { try RouteRecord.decode(Array(text.utf8)) }
        }
    }
}

@Suite struct RedisReconnectGateTests {
    @Test func aRequestStartsOneAttemptWhileDownAndJoinsIt() {
        var availability = RedisAvailability(minimumBackoff: 100, maximumBackoff: 5_000)
        // The first attempt is under way (start-up): requests join it.
        let r1 = availability.demanded()
        #expect(!r1)
        #expect(availability.state == .connecting)
        _ = availability.connected(now: 0)
        let r2 = availability.demanded()
        #expect(!r2, "up: requests just go")
        let lost = availability.failed(now: 1_000)
        #expect(lost.report == .lost && lost.retryAt == 1_100)
        // Down, the backoff timer pending: the first request connects at once...
        let r3 = availability.demanded()
        #expect(r3)
        #expect(availability.state == .connecting && !availability.usable)
        // ...and every other one joins that attempt: one connect in flight.
        for _ in 0..<100 { let r4 = availability.demanded(); #expect(!r4) }
        // The attempt fails (a dead Redis): the next request may try again, the backoff
        // (for the idle timer) keeps growing as before.
        let again = availability.failed(now: 1_010)
        #expect(again.report == nil && again.retryAt == 1_210)
        let r5 = availability.demanded()
        #expect(r5)
        let r6 = availability.demanded()
        #expect(!r6)
        // Redis is back: the attempt a request started reports the recovery.
        let r7 = availability.connected(now: 1_020)
        #expect(r7 == .recovered(downForMilliseconds: 20))
        let r8 = availability.demanded()
        #expect(!r8 && availability.usable)
    }

    @Test func theBackoffTimerAndARequestNeverConnectTwice() {
        var availability = RedisAvailability()
        _ = availability.failed(now: 0)
        availability.reconnecting()  // the timer's attempt
        let r9 = availability.demanded()
        #expect(!r9, "a request joins the timer's attempt")
    }
}

@Suite struct RouteClaimTests {
    @Test func foundInRedisWins() {
        var claim = RouteClaim(retryDelay: 100)
        let r10 = claim.answered(.found, foundLocally: true, now: 5)
        #expect(r10 == .useShared)
    }

    @Test func absentInRedisButLocalUsesLocal() {
        var claim = RouteClaim(retryDelay: 100)
        let r11 = claim.answered(.absent, foundLocally: true, now: 5)
        #expect(r11 == .useLocal)
    }

    @Test func unavailableNeverAsksAgain() {
        var claim = RouteClaim(retryDelay: 100)
        let r12 = claim.answered(.unavailable, foundLocally: false, now: 5)
        #expect(r12 == .useLocal)
    }

    @Test func aMissEverywhereAsksOnceMoreAfterTheDelay() {
        var claim = RouteClaim(retryDelay: 100)
        let r13 = claim.answered(.absent, foundLocally: false, now: 1_000)
        #expect(r13 == .askAgain(at: 1_100))
        // The SET landed meanwhile.
        var landed = claim
        let r14 = landed.answered(.found, foundLocally: false, now: 1_100)
        #expect(r14 == .useShared)
        // Still nowhere: the call goes on without a route; never a third ask.
        let r15 = claim.answered(.absent, foundLocally: false, now: 1_100)
        #expect(r15 == .useLocal)
        #expect(claim.answers == 2)
        // Redis gone by the second ask: the local registry decides (it may have it by now).
        var secondUnavailable = RouteClaim(retryDelay: 100)
        _ = secondUnavailable.answered(.absent, foundLocally: false, now: 0)
        let r16 = secondUnavailable.answered(.unavailable, foundLocally: true, now: 100)
        #expect(r16 == .useLocal)
    }

    @Test func routesNotSharedHaveABudgetOfTheirOwn() {
        #expect(PeerLogKind.routeNotShared.description == "route_not_shared")
        var limiter = LogRateLimiter(perSecond: 2, burst: 3)
        for _ in 0..<3 { let r17 = limiter.admit(.routeNotShared, now: 0); #expect(r17 == .write(suppressedBefore: 0)) }
        let r18 = limiter.admit(.routeNotShared, now: 0)
        #expect(r18 == .suppress)
        let r19 = limiter.admit(.webhookDropped, now: 0)
        #expect(r19 == .write(suppressedBefore: 0), "another kind's budget is untouched")
        let r20 = limiter.admit(.routeNotShared, now: 500)
        #expect(r20 == .write(suppressedBefore: 1))
    }

    @Test func zeroDelayNeverAsksTwice() {
        var claim = RouteClaim(retryDelay: 0)
        let r21 = claim.answered(.absent, foundLocally: false, now: 1_000)
        #expect(r21 == .useLocal)
    }

    @Test func configuration() throws {
        #expect(Configuration().redisClaimRetryMilliseconds == 100)
        let set = try Configuration.parse(environment: ["REDIS_CLAIM_RETRY_MS": "0"], fileExists: { _ in false })
        #expect(set.redisClaimRetryMilliseconds == 0)
        for bad in ["-1", "5001", "1.5", "soon"] {
            do {
                _ = try Configuration.parse(environment: ["REDIS_CLAIM_RETRY_MS": bad], fileExists: { _ in false })
                Issue.record("accepted \(bad)")
            } catch {
                #expect(error.description.hasPrefix("REDIS_CLAIM_RETRY_MS"), "\(error)")
                #expect(error.description.contains(bad), "\(error)")
            }
        }
    }
}
