@testable import AVRCore
import AVRProtocol
import Testing

/// Transcripts of the STS WebSocket connection's life: events in, actions out.
@Suite struct STSWebSocketStateMachineTests {
    static let url = try! EndpointURL.parse("ws://127.0.0.1:9/sts")
    static let secureURL = try! EndpointURL.parse("wss://sts.example:443/")

    /// One line per action, so a transcript reads as a list of strings.
    static func label(_ action: STSWebSocketStateMachine.Action) -> String {
        switch action {
        case .none: "none"
        case .connect: "connect"
        case .sendHandshake: "sendHandshake"
        case .open(let held, let wakeIn):
            "open(held: \(held.frameLengths), dropped: \(held.droppedBytes))" + (wakeIn.map { ", wake in \($0)" } ?? "")
        case .sendAudio: "sendAudio"
        case .sendDTMF: "sendDTMF"
        case .deliver: "deliver"
        case .sendPong: "sendPong"
        case .sendPing(let wakeIn): "sendPing(wake in \(wakeIn))"
        case .sleep(let delay): "sleep(\(delay))"
        case .ignoreBinary: "ignoreBinary"
        case .answerClose(let code): "answerClose(\(code.map { String($0.rawValue) } ?? "none"))"
        case .startClosing: "startClosing"
        case .finish(let reason, let politely):
            switch reason {
            case nil: "finish(quietly, politely: \(politely))"
            case .finished?: "finish(finished, politely: \(politely))"
            case .endedWithoutCloseFrame?: "finish(endedWithoutCloseFrame, politely: \(politely))"
            case .failed(let failure)?: "finish(failed: \(failure), politely: \(politely))"
            }
        case .failProtocol(let error): "failProtocol(\(error), \(error.closeCode.rawValue))"
        case .failPolicy(let failure): "failPolicy(\(failure))"
        }
    }

    static func frame(_ count: Int) -> [UInt8] { [UInt8](repeating: 7, count: count) }

    static func opened(preOpenCapacity: Int = 48_000) -> STSWebSocketStateMachine {
        var machine = STSWebSocketStateMachine(url: url, connectTimeout: 3000, preOpenCapacity: preOpenCapacity)
        _ = machine.start(tlsAvailable: true)
        _ = machine.connected()
        _ = machine.handshakeAnswered()
        return machine
    }

    @Test func audioBeforeOpenIsHeldInOrderThenFlushed() {
        var machine = STSWebSocketStateMachine(url: Self.url, connectTimeout: 3000, preOpenCapacity: 48_000)
        var transcript: [String] = []
        transcript.append(Self.label(machine.start(tlsAvailable: false)))
        transcript.append(Self.label(Self.frame(320).withUnsafeBytes { machine.callerAudio($0) }))
        transcript.append(Self.label(machine.dtmf()))
        transcript.append(Self.label(machine.connected()))
        transcript.append(Self.label(Self.frame(160).withUnsafeBytes { machine.callerAudio($0) }))
        transcript.append(Self.label(machine.handshakeAnswered()))
        transcript.append(Self.label(Self.frame(320).withUnsafeBytes { machine.callerAudio($0) }))
        transcript.append(Self.label(machine.dtmf()))
        #expect(transcript == [
            "connect", "none", "none", "sendHandshake", "none",
            "open(held: [320, 160], dropped: 0)", "sendAudio", "sendDTMF",
        ])
    }

    @Test func heldAudioIsBoundedOldestFirst() {
        var machine = STSWebSocketStateMachine(url: Self.url, connectTimeout: 3000, preOpenCapacity: 1000)
        _ = machine.start(tlsAvailable: true)
        for _ in 0..<5 { _ = Self.frame(320).withUnsafeBytes { machine.callerAudio($0) } }
        _ = machine.connected()
        #expect(Self.label(machine.handshakeAnswered()) == "open(held: [320, 320, 320], dropped: 640)")
    }

    @Test func wssWithoutTLSFailsAtOnce() {
        var machine = STSWebSocketStateMachine(url: Self.secureURL, connectTimeout: 3000, preOpenCapacity: 0)
        #expect(Self.label(machine.start(tlsAvailable: false))
            == "finish(failed: STS WebSocket wss://sts.example:443/: TLS is not available, politely: false)")
        #expect(Self.label(machine.connected()) == "none", "a late connection is not used")
    }

    @Test func connectFailureAndHandshakeTimeout() {
        var machine = STSWebSocketStateMachine(url: Self.url, connectTimeout: 3000, preOpenCapacity: 0)
        _ = machine.start(tlsAvailable: true)
        #expect(Self.label(machine.connectFailed(.timedOut(milliseconds: 3000)))
            == "finish(failed: STS WebSocket ws://127.0.0.1:9/sts: no connection within 3000 ms, politely: false)")
        #expect(Self.label(machine.timerFired()) == "none")

        var second = STSWebSocketStateMachine(url: Self.url, connectTimeout: 500, preOpenCapacity: 0)
        _ = second.start(tlsAvailable: true)
        _ = second.connected()
        #expect(Self.label(second.timerFired())
            == "finish(failed: no WebSocket handshake answer from ws://127.0.0.1:9/sts within 500 ms, politely: false)")
        #expect(Self.label(second.handshakeAnswered()) == "none", "an answer after the deadline opens nothing")
    }

    @Test func rejectedHandshakeAndEarlyEnd() {
        var machine = STSWebSocketStateMachine(url: Self.url, connectTimeout: 3000, preOpenCapacity: 0)
        _ = machine.start(tlsAvailable: true)
        _ = machine.connected()
        #expect(Self.label(machine.handshakeRejected(.refused(status: 404, reason: "Not Found")))
            == "finish(failed: STS WebSocket ws://127.0.0.1:9/sts: handshake refused: HTTP 404 Not Found, politely: false)")

        var early = STSWebSocketStateMachine(url: Self.url, connectTimeout: 3000, preOpenCapacity: 0)
        _ = early.start(tlsAvailable: true)
        _ = early.connected()
        #expect(Self.label(early.peerEnded(nil))
            == "finish(failed: STS closed the connection without a close frame, politely: false)")
    }

    @Test func messagesWhileOpen() {
        var machine = Self.opened()
        let bytes: [UInt8] = Array("{}".utf8)
        let transcript = bytes.withUnsafeBytes { payload in
            [machine.received(.text(payload)), machine.received(.binary(payload)), machine.received(.ping(payload)),
             machine.received(.pong(payload))].map(Self.label)
        }
        #expect(transcript == ["deliver", "ignoreBinary", "sendPong", "none"])
    }

    @Test func serviceClosesFirst() {
        var machine = Self.opened()
        let action = [UInt8]().withUnsafeBytes { machine.received(.close(code: .normalClosure, reason: $0)) }
        #expect(Self.label(action) == "answerClose(1000)")
        #expect(Self.label(machine.peerEnded(nil)) == "none")
        #expect(Self.label(Self.frame(320).withUnsafeBytes { machine.callerAudio($0) }) == "none", "nothing is sent after close")
        #expect(Self.label(machine.hangup()) == "none")
    }

    @Test func serviceEndsWithoutCloseFrameOrFails() {
        var clean = Self.opened()
        #expect(Self.label(clean.peerEnded(nil)) == "finish(endedWithoutCloseFrame, politely: false)")
        var reset = Self.opened()
        #expect(Self.label(reset.peerEnded(.tls("connection closed without close_notify")))
            == "finish(failed: connection failed: TLS: connection closed without close_notify, politely: false)")
    }

    @Test func callerHangsUpWhileOpen() {
        // Our close frame, then the service's close frame completes the handshake.
        var answered = Self.opened()
        #expect(Self.label(answered.hangup()) == "startClosing")
        let text: [UInt8] = Array("{}".utf8)
        #expect(Self.label(text.withUnsafeBytes { answered.received(.text($0)) }) == "deliver",
                "messages still in flight are read")
        #expect(Self.label(text.withUnsafeBytes { answered.received(.ping($0)) }) == "none", "no pong after our close")
        #expect(Self.label([UInt8]().withUnsafeBytes { answered.received(.close(code: .normalClosure, reason: $0)) })
            == "finish(quietly, politely: true)")
        #expect(Self.label(answered.timerFired()) == "none")

        // The service only drops the connection.
        var dropped = Self.opened()
        _ = dropped.hangup()
        #expect(Self.label(dropped.peerEnded(nil)) == "finish(quietly, politely: false)")

        // The service says nothing: the close timer ends the wait.
        var silent = Self.opened()
        _ = silent.hangup()
        #expect(Self.label(silent.timerFired()) == "finish(quietly, politely: false)")
        #expect(Self.label(silent.hangup()) == "none", "the call ends once")
    }

    @Test func callerHangsUpBeforeOpen() {
        for steps in 0...2 {
            var machine = STSWebSocketStateMachine(url: Self.url, connectTimeout: 3000, preOpenCapacity: 0)
            if steps >= 1 { _ = machine.start(tlsAvailable: true) }
            if steps >= 2 { _ = machine.connected() }
            #expect(Self.label(machine.hangup()) == "finish(quietly, politely: true)", "after \(steps) steps")
            #expect(Self.label(machine.handshakeAnswered()) == "none")
            #expect(Self.label(machine.connected()) == "none")
        }
    }

    @Test func protocolViolationClosesWithItsCode() {
        var machine = Self.opened()
        #expect(Self.label(machine.protocolViolated(.maskedFrameFromServer)) == "failProtocol(masked frame from server, 1002)")
        #expect(Self.label(machine.protocolViolated(.invalidUTF8)) == "none", "reported once")
        var closing = Self.opened()
        _ = closing.hangup()
        #expect(Self.label(closing.protocolViolated(.messageTooLarge))
            == "failProtocol(message larger than the configured maximum, 1009)")
    }

    // MARK: Liveness and ping floods

    static func live(interval: UInt64 = 10_000, timeout: UInt64 = 5000, openedAt: UInt64 = 1000) -> STSWebSocketStateMachine {
        var machine = STSWebSocketStateMachine(url: url, connectTimeout: 3000, preOpenCapacity: 0,
                                               liveness: .init(interval: interval, timeout: timeout))
        _ = machine.start(tlsAvailable: true)
        _ = machine.connected()
        #expect(label(machine.handshakeAnswered(now: openedAt)) == "open(held: [], dropped: 0), wake in \(interval)")
        return machine
    }

    static let ping: [UInt8] = [1, 2, 3]

    @Test func pingDueThenAnsweredThenTheNextPingOneIntervalAfterTheFirst() {
        var machine = Self.live()
        var transcript: [String] = []
        transcript.append(Self.label(machine.timerFired(now: 11_000)))  // the first ping is due
        machine.heardFromService()                                       // its pong, at 11 020
        transcript.append(Self.label(Self.ping.withUnsafeBytes { machine.received(.pong($0), now: 11_020) }))
        transcript.append(Self.label(machine.timerFired(now: 16_000)))  // the check: answered
        transcript.append(Self.label(machine.timerFired(now: 21_003)))  // a late timer: ping at once
        #expect(transcript == ["sendPing(wake in 5000)", "none", "sleep(5000)", "sendPing(wake in 5000)"])
    }

    @Test func anyFrameAnswersAPing() {
        var machine = Self.live(interval: 500, timeout: 500)
        _ = machine.timerFired(now: 1500)
        machine.heardFromService()  // agent audio, not a pong
        _ = Array("{}".utf8).withUnsafeBytes { machine.received(.text($0)) }
        #expect(Self.label(machine.timerFired(now: 2000)) == "sendPing(wake in 500)", "interval = timeout: the next ping at once")
    }

    @Test func noFrameWithinTheTimeoutEndsTheCallAsAnSTSFailure() {
        var machine = Self.live()
        #expect(Self.label(machine.timerFired(now: 11_000)) == "sendPing(wake in 5000)")
        #expect(Self.label(machine.timerFired(now: 12_000)) == "sleep(4000)", "an early wake-up waits for the deadline")
        #expect(Self.label(machine.timerFired(now: 16_000))
            == "finish(failed: no answer to ping within 5000 ms, politely: false)")
        #expect(Self.label(machine.timerFired(now: 17_000)) == "none", "reported once")
        #expect(Self.label(machine.hangup()) == "none")
    }

    @Test func framesBeforeThePingDoNotAnswerIt() {
        var machine = Self.live(interval: 500, timeout: 200)
        machine.heardFromService()
        #expect(Self.label(machine.timerFired(now: 1500)) == "sendPing(wake in 200)")
        #expect(Self.label(machine.timerFired(now: 1700)) == "finish(failed: no answer to ping within 200 ms, politely: false)")
    }

    @Test func pingsOffMeansNoTimerAndNoCheck() {
        var machine = Self.opened()
        #expect(Self.label(machine.timerFired(now: 1_000_000)) == "none")
    }

    @Test func aPingFloodEndsTheConnectionWithPolicyViolation() {
        var machine = Self.live()
        let answers = (0..<50).map { k in Self.label(Self.ping.withUnsafeBytes { machine.received(.ping($0), now: 5000 + UInt64(k)) }) }
        #expect(answers == Array(repeating: "sendPong", count: 50), "50 pings in a second are answered")
        #expect(Self.label(Self.ping.withUnsafeBytes { machine.received(.ping($0), now: 5999) })
            == "failPolicy(ping flood: more than 50 pings within one second)")
        #expect(Self.label(machine.timerFired(now: 11_000)) == "none", "closed: no more pings")
    }

    @Test func fiftyPingsEverySecondIsNoFlood() {
        var machine = Self.live()
        for second in 0..<5 {
            for k in 0..<50 {
                let now = 2000 + UInt64(second) * 1000 + UInt64(k) * 20
                #expect(Self.label(Self.ping.withUnsafeBytes { machine.received(.ping($0), now: now) }) == "sendPong")
            }
        }
    }

    @Test func sendBudgetDropsPastItsBoundAndLogsTheFirstThenEvery500th() {
        var budget = STSSendBudget(maxPendingBytes: 1000)
        #expect(budget.admit(pendingBytes: 1000) == .send)
        #expect(budget.admit(pendingBytes: 1001) == .dropAndLog(count: 1))
        var logged: [Int] = []
        for _ in 0..<1000 { if case .dropAndLog(let count) = budget.admit(pendingBytes: 5000) { logged.append(count) } }
        #expect(logged == [500, 1000])
        #expect(budget.dropped == 1001)
        #expect(budget.admit(pendingBytes: 0) == .send)
    }
}
