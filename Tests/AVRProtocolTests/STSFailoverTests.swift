import Testing
@testable import AVRProtocol

@Suite struct STSEndpointListTests {
    @Test func separatorsAreWhitespaceAndCommasBeforeAScheme() throws {
        #expect(STSEndpointList.split("ws://a:1/x") == ["ws://a:1/x"])
        #expect(STSEndpointList.split("ws://a:1 ws://b:2") == ["ws://a:1", "ws://b:2"])
        #expect(STSEndpointList.split(" ws://a:1,ws://b:2 ,\twss://c/\n") == ["ws://a:1", "ws://b:2", "wss://c/"])
        #expect(STSEndpointList.split("ws://a:1, http://b:2,") == ["ws://a:1", "http://b:2"])
        // A comma inside a query is part of the endpoint, as it was with one URL.
        #expect(STSEndpointList.split("ws://a/?voices=x,y,ws://b/?v=1,2")
            == ["ws://a/?voices=x,y", "ws://b/?v=1,2"])
        let urls = try STSEndpointList.parse("ws://a:1/p?q=1, https://b")
        #expect(urls.map(\.description) == ["ws://a:1/p?q=1", "https://b"])
        #expect(STSEndpointList.join(["ws://a/", "ws://b/"]) == "ws://a/ ws://b/")
    }

    @Test func theBadEntryIsNamed() {
        func error(_ text: String) -> String? {
            do { _ = try STSEndpointList.parse(text); return nil } catch { return error.description }
        }
        #expect(error("ws://a:1 ftp://b") == #""ftp://b" is not a valid URL: unknown scheme "ftp" (expected ws, wss, http or https)"#)
        #expect(error("ws://a:1,ws://b:99999") == #""ws://b:99999" is not a valid URL: "99999" is not a port (1-65535)"#)
        #expect(error("ws://a:1 b:2") == #""b:2" is not a valid URL: missing scheme (expected ws://, wss://, http:// or https://)"#)
        #expect(error(" , ") == #"no endpoint in " , ""#)
        let many = (1...17).map { "ws://h:\($0)" }.joined(separator: " ")
        #expect(error(many) == "17 endpoints; at most 16")
    }

    @Test func redactedDropsCredentialsQueryValuesAndFragment() throws {
        #expect(try EndpointURL.parse("wss://user:secret@sts.example:8443/v1?token=abc&from=2000#x").redacted
            == "wss://sts.example:8443/v1?token=&from=")
        #expect(try EndpointURL.parse("ws://127.0.0.1:6030").redacted == "ws://127.0.0.1:6030/")
        #expect(try EndpointURL.parse("ws://[::1]:1/p?a").redacted == "ws://[::1]:1/p?a=")
    }
}

/// Transcripts of `STSFailoverMachine`: events with the time they happen, and the action.
@Suite struct STSFailoverMachineTests {
    typealias Machine = STSFailoverMachine

    static func machine(endpoints: Int = 2, connectTimeout: UInt64 = 5000, attempts: Int = 3,
                        budget: UInt64 = 3000) -> Machine {
        Machine(settings: .init(endpoints: endpoints, connectTimeout: connectTimeout, attempts: attempts, budget: budget))
    }

    static func open(_ machine: inout Machine, at now: UInt64 = 0) {
        #expect(machine.start(now: now) == .connect(endpoint: 0, timeout: 5000, deadlineIn: 10_000))
        #expect(machine.opened(now: now + 10) == .opened(nil))
    }

    @Test func callStartTriesEachEndpointOnceSharingTwiceTheConnectTimeout() {
        var m = Self.machine(endpoints: 3, connectTimeout: 6000)
        #expect(m.start(now: 100) == .connect(endpoint: 0, timeout: 4000, deadlineIn: 12_000))
        // Refused at once: the two left share what is left (never more than the timeout each).
        #expect(m.attemptFailed(now: 101) == .connect(endpoint: 1, timeout: 5999, deadlineIn: 11_999))
        // Timed out (connect, then handshake): the last one gets the rest.
        #expect(m.attemptFailed(now: 9100) == .connect(endpoint: 2, timeout: 3000, deadlineIn: 3000))
        #expect(m.attemptFailed(now: 9200) == .giveUp)
        #expect(m.phase == .ended)
        #expect(m.attemptFailed(now: 3300) == .none)
    }

    @Test func callStartOpensOnTheSecond() {
        var m = Self.machine()
        #expect(m.start(now: 0) == .connect(endpoint: 0, timeout: 5000, deadlineIn: 10_000))
        #expect(m.attemptFailed(now: 2) == .connect(endpoint: 1, timeout: 5000, deadlineIn: 9998))
        #expect(m.opened(now: 9) == .opened(nil), "no failover at call start: nothing was lost")
        #expect(m.current == 1)
    }

    @Test func callStartDeadlineEndsIt() {
        var m = Self.machine()
        _ = m.start(now: 0)
        #expect(m.deadlinePassed(now: 9999) == .none, "a timer firing early changes nothing")
        #expect(m.deadlinePassed(now: 10_000) == .giveUp)
        var late = Self.machine()
        _ = late.start(now: 0)
        #expect(late.attemptFailed(now: 10_000) == .giveUp, "no time left for the second")
    }

    @Test func lossFailsOverRoundRobinAndReportsTheGap() {
        var m = Self.machine()
        Self.open(&m)
        #expect(m.lost(now: 1000) == .connect(endpoint: 1, timeout: 1500, deadlineIn: 3000))
        #expect(m.opened(now: 1040) == .opened(.init(from: 0, to: 1, gapMilliseconds: 40)))
        // Long after: a new window, and round-robin back to the first.
        #expect(m.lost(now: 60_000) == .connect(endpoint: 0, timeout: 1500, deadlineIn: 3000))
        #expect(m.attemptFailed(now: 60_001) == .connect(endpoint: 1, timeout: 1499, deadlineIn: 2999))
        #expect(m.opened(now: 60_030) == .opened(.init(from: 1, to: 1, gapMilliseconds: 30)))
    }

    @Test func failoverGivesUpAfterItsAttempts() {
        var m = Self.machine(attempts: 3)
        Self.open(&m)
        // Half of what is left to each but the last, which gets the rest.
        #expect(m.lost(now: 1000) == .connect(endpoint: 1, timeout: 1500, deadlineIn: 3000))
        #expect(m.attemptFailed(now: 1001) == .connect(endpoint: 0, timeout: 1499, deadlineIn: 2999))
        #expect(m.attemptFailed(now: 1002) == .connect(endpoint: 1, timeout: 2998, deadlineIn: 2998))
        #expect(m.attemptFailed(now: 1003) == .giveUp)
    }

    @Test func failoverGivesUpAtItsBudget() {
        var m = Self.machine(attempts: 5, budget: 1000)
        Self.open(&m)
        _ = m.lost(now: 1000)
        #expect(m.deadlinePassed(now: 2000) == .giveUp)
    }

    @Test func aConnectionLostYoungContinuesTheCount() {
        var m = Self.machine(attempts: 2, budget: 3000)
        Self.open(&m)
        #expect(m.lost(now: 1000) == .connect(endpoint: 1, timeout: 1500, deadlineIn: 3000))
        #expect(m.opened(now: 1010) == .opened(.init(from: 0, to: 1, gapMilliseconds: 10)))
        // Accepted, then dropped at once: one attempt of the window is left.
        #expect(m.lost(now: 1020) == .connect(endpoint: 0, timeout: 3000, deadlineIn: 3000))
        #expect(m.opened(now: 1030) == .opened(.init(from: 1, to: 0, gapMilliseconds: 10)))
        #expect(m.lost(now: 1040) == .giveUp, "no attempt left in this window")
    }

    @Test func oneEndpointOrNoAttemptsPassesTheLossOn() {
        var single = Self.machine(endpoints: 1)
        #expect(single.start(now: 0) == .connect(endpoint: 0, timeout: 5000, deadlineIn: 10_000))
        #expect(single.opened(now: 5) == .opened(nil))
        #expect(single.lost(now: 100) == .passOn)
        var off = Self.machine(attempts: 0)
        Self.open(&off)
        #expect(off.lost(now: 100) == .passOn)
    }

    @Test func aNormalCloseIsNoFailover() {
        var m = Self.machine()
        Self.open(&m)
        #expect(m.finished() == .passOn)
        #expect(m.lost(now: 100) == .none)
        #expect(m.opened(now: 100) == .none)
    }
}

@Suite struct STSFailoverConfigurationTests {
    func parse(_ environment: [String: String]) throws(ConfigurationError) -> Configuration {
        try Configuration.parse(environment: environment, fileExists: { _ in false })
    }

    func message(_ environment: [String: String]) -> String? {
        do { _ = try parse(environment); return nil } catch { return error.description }
    }

    @Test func stsURLListsEndpoints() throws {
        let one = try parse(["STS_URL": "ws://a:1/x"])
        #expect(one.stsEndpoints.map(\.description) == ["ws://a:1/x"])
        #expect(one.stsURL?.description == "ws://a:1/x")
        #expect(one.stsURLText == "ws://a:1/x")
        let two = try parse(["STS_URL": "ws://a:1/x, wss://b/y?k=1,2"])
        #expect(two.stsEndpoints.map(\.description) == ["ws://a:1/x", "wss://b/y?k=1,2"])
        #expect(two.stsURL?.description == "ws://a:1/x", "the first endpoint")
        #expect(two.stsURLText == "ws://a:1/x wss://b/y?k=1,2")
        #expect(try parse([:]).stsURLText == nil)
    }

    @Test func aBadEndpointIsNamedWithTheVariable() {
        #expect(message(["STS_URL": "ws://a:1 ftp://b"])
            == #"STS_URL: "ftp://b" is not a valid URL: unknown scheme "ftp" (expected ws, wss, http or https)"#)
        #expect(message(["STS_URL": "ws://a:1, ws://b:0"]) == #"STS_URL: "ws://b:0" is not a valid URL: "0" is not a port (1-65535)"#)
        #expect(message(["STS_URL": ","]) == #"STS_URL: no endpoint in ",""#)
        #expect(message(["STS_URL": (1...17).map { "ws://h:\($0)" }.joined(separator: ",")]) == "STS_URL: 17 endpoints; at most 16")
    }

    @Test func failoverAttemptsAndBudget() throws {
        let defaults = Configuration()
        #expect(defaults.stsFailoverAttempts == 3)
        #expect(defaults.stsFailoverBudgetMilliseconds == 3000)
        let set = try parse(["STS_FAILOVER_ATTEMPTS": "0", "STS_FAILOVER_BUDGET_MS": "100"])
        #expect(set.stsFailoverAttempts == 0)
        #expect(set.stsFailoverBudgetMilliseconds == 100)
        #expect(try parse(["STS_FAILOVER_ATTEMPTS": "", "STS_FAILOVER_BUDGET_MS": ""]) == Configuration())
        #expect(message(["STS_FAILOVER_ATTEMPTS": "17"])
            == #"STS_FAILOVER_ATTEMPTS: "17" is not a whole number of attempts in 0-16"#)
        #expect(message(["STS_FAILOVER_ATTEMPTS": "-1"])
            == #"STS_FAILOVER_ATTEMPTS: "-1" is not a whole number of attempts in 0-16"#)
        #expect(message(["STS_FAILOVER_BUDGET_MS": "99"])
            == #"STS_FAILOVER_BUDGET_MS: "99" is not a whole number of milliseconds in 100-60000"#)
        #expect(message(["STS_FAILOVER_BUDGET_MS": "3s"])
            == #"STS_FAILOVER_BUDGET_MS: "3s" is not a whole number of milliseconds in 100-60000"#)
    }
}
