@testable import AVRCore
import AVRProtocol
import Testing

/// A request with a name, for transcripts.
final class NamedRequest: PooledRequest, CustomStringConvertible {
    let name: String
    var isFinished = false
    var retried = false
    init(_ name: String) { self.name = name }
    var description: String { name }
}

/// Transcripts of one pooled client connection: events in, actions out.
@Suite struct ClientConnectionStateMachineTests {
    typealias Machine = ClientConnectionStateMachine<NamedRequest>

    static func label(_ action: Machine.Action) -> String {
        switch action {
        case .none: "none"
        case .connect(let request): "connect(\(request))"
        case .send(let request): "send(\(request))"
        case .discardStream: "discardStream"
        case .complete(let request, let keepAlive): "complete(\(request), keepAlive: \(keepAlive))"
        case .fail(let request, let error): "fail(\(request), \(error))"
        case .retry(let request): "retry(\(request))"
        case .close: "close"
        }
    }

    @Test func keepAliveExchangesReuseTheConnection() {
        var machine = Machine()
        let first = NamedRequest("a"), second = NamedRequest("b")
        let transcript = [
            machine.run(first), machine.connected(), machine.responseReceived(keepAlive: true),
            machine.run(second), machine.responseReceived(keepAlive: true), machine.idleTimerFired(),
        ].map(Self.label)
        #expect(transcript == ["connect(a)", "send(a)", "complete(a, keepAlive: true)",
                               "send(b)", "complete(b, keepAlive: true)", "close"])
        #expect(Self.label(machine.run(NamedRequest("c"))) == "fail(c, connection closed before the request was sent)")
    }

    @Test func connectionCloseResponseClosesAfterIt() {
        var machine = Machine()
        let request = NamedRequest("a")
        #expect([machine.run(request), machine.connected(), machine.responseReceived(keepAlive: false)].map(Self.label)
            == ["connect(a)", "send(a)", "complete(a, keepAlive: false)"])
        #expect(Self.label(machine.peerEnded(nil, sawBytes: true, atEOF: .complete(consumed: 0))) == "none")
    }

    @Test func connectFailureFailsTheRequest() {
        var machine = Machine()
        _ = machine.run(NamedRequest("a"))
        #expect(Self.label(machine.connectFailed(.connect(.timedOut))) == "fail(a, \(HTTPClientError.connect(.timedOut)))")
        #expect(Self.label(machine.connectFailed(.connect(.timedOut))) == "none", "reported once")
        #expect(Self.label(machine.connected()) == "discardStream", "a late connection is closed, not used")
    }

    @Test func aStaleKeepAliveConnectionIsRetriedOnce() {
        var machine = Machine()
        let request = NamedRequest("a")
        _ = machine.run(NamedRequest("first"))
        _ = machine.connected()
        _ = machine.responseReceived(keepAlive: true)
        _ = machine.run(request)
        // The server had closed it: EOF before any byte of the response.
        #expect(Self.label(machine.peerEnded(nil, sawBytes: false, atEOF: .failure(.closedBeforeResponse)))
            == "retry(a)")

        // The same request, already retried, fails rather than looping.
        var again = Machine()
        request.retried = true
        _ = again.run(NamedRequest("first"))
        _ = again.connected()
        _ = again.responseReceived(keepAlive: true)
        _ = again.run(request)
        #expect(Self.label(again.peerEnded(nil, sawBytes: false, atEOF: .failure(.closedBeforeResponse)))
            == "fail(a, connection closed before any response)")
    }

    @Test func aFreshConnectionIsNeverRetried() {
        var machine = Machine()
        _ = machine.run(NamedRequest("a"))
        _ = machine.connected()
        #expect(Self.label(machine.peerEnded(nil, sawBytes: false, atEOF: .failure(.closedBeforeResponse)))
            == "fail(a, connection closed before any response)")
    }

    @Test func endsOfTheResponse() {
        // A close-delimited body ends with the connection.
        var delimited = Machine()
        _ = delimited.run(NamedRequest("a"))
        _ = delimited.connected()
        #expect(Self.label(delimited.peerEnded(nil, sawBytes: true, atEOF: .complete(consumed: 0)))
            == "complete(a, keepAlive: false)")
        // A truncated TLS stream is an error even where EOF would complete the body.
        var truncated = Machine()
        _ = truncated.run(NamedRequest("b"))
        _ = truncated.connected()
        #expect(Self.label(truncated.peerEnded(.tls("connection closed without close_notify"), sawBytes: true,
                                                atEOF: .complete(consumed: 0)))
            == "fail(b, TLS failed: connection closed without close_notify)")
        // Mid-body.
        var cut = Machine()
        _ = cut.run(NamedRequest("c"))
        _ = cut.connected()
        #expect(Self.label(cut.peerEnded(nil, sawBytes: true, atEOF: .needMore))
            == "fail(c, connection closed in the middle of the response)")
    }

    @Test func outOfStepBytesAndBadResponses() {
        var idle = Machine()
        _ = idle.run(NamedRequest("a"))
        _ = idle.connected()
        _ = idle.responseReceived(keepAlive: true)
        #expect(Self.label(idle.unexpectedBytes()) == "close")
        var bad = Machine()
        _ = bad.run(NamedRequest("b"))
        _ = bad.connected()
        #expect(Self.label(bad.responseInvalid(.malformed(code: 4, reason: "Invalid constant"))) == "fail(b, invalid response: Invalid constant)")
    }

    @Test func abortLeavesTheRequestShutdownFailsIt() {
        var aborted = Machine()
        _ = aborted.run(NamedRequest("a"))
        _ = aborted.connected()
        #expect(Self.label(aborted.abort()) == "close")
        #expect(Self.label(aborted.responseReceived(keepAlive: true)) == "none", "a response after the timeout is dropped")
        var shut = Machine()
        _ = shut.run(NamedRequest("b"))
        #expect(Self.label(shut.shutdown()) == "fail(b, client shut down)")
        #expect(Self.label(shut.shutdown()) == "none")
    }
}

/// Transcripts of one origin's pool.
@Suite struct OriginPoolStateMachineTests {
    typealias Machine = OriginPoolStateMachine<NamedRequest>

    static func label(_ action: Machine.Action) -> String {
        switch action {
        case .none: "none"
        case .run(let request, let id): "run(\(request), on: \(id))"
        case .open(let request, let id): "open(\(request), id: \(id))"
        case .reject(let request, let limit): "reject(\(request), limit: \(limit))"
        }
    }

    @Test func opensUpToTheLimitThenQueuesThenRejects() {
        var pool = Machine(maxConnections: 2, maxWaiting: 1)
        let transcript = ["a", "b", "c", "d"].map { Self.label(pool.enqueue(NamedRequest($0))) }
        #expect(transcript == ["open(a, id: 1)", "open(b, id: 2)", "none", "reject(d, limit: 1)"])
        #expect(pool.waitingCount == 1)
    }

    @Test func anIdleConnectionTakesTheOldestWaitingRequest() {
        var pool = Machine(maxConnections: 1, maxWaiting: 10)
        let requests = ["a", "b", "c"].map(NamedRequest.init)
        _ = requests.map { pool.enqueue($0) }
        #expect(Self.label(pool.connectionIdle(1)) == "run(b, on: 1)")
        #expect(Self.label(pool.connectionIdle(1)) == "run(c, on: 1)")
        #expect(Self.label(pool.connectionIdle(1)) == "none")
        #expect(Self.label(pool.enqueue(NamedRequest("d"))) == "run(d, on: 1)", "the idle connection is reused")
    }

    @Test func requestsThatTimedOutWhileWaitingAreSkipped() {
        var pool = Machine(maxConnections: 1, maxWaiting: 10)
        let requests = ["a", "b", "c"].map(NamedRequest.init)
        _ = requests.map { pool.enqueue($0) }
        requests[1].isFinished = true
        #expect(Self.label(pool.connectionIdle(1)) == "run(c, on: 1)")
    }

    @Test func aClosedConnectionMakesRoomForTheWaiting() {
        var pool = Machine(maxConnections: 1, maxWaiting: 10)
        _ = ["a", "b"].map { pool.enqueue(NamedRequest($0)) }
        #expect(pool.connectionClosed(1).map(Self.label) == ["open(b, id: 2)"])
        #expect(pool.connectionClosed(1).isEmpty, "a connection closes once")
        #expect(Self.label(pool.connectionIdle(1)) == "none", "a closed connection takes nothing")
        #expect(pool.open == [2])
    }

    @Test func mostRecentlyIdleFirst() {
        var pool = Machine(maxConnections: 3, maxWaiting: 10)
        _ = ["a", "b"].map { pool.enqueue(NamedRequest($0)) }
        _ = pool.connectionIdle(1)
        _ = pool.connectionIdle(2)
        #expect(Self.label(pool.enqueue(NamedRequest("c"))) == "run(c, on: 2)")
    }

    @Test func shutdownHandsBackTheWaiting() {
        var pool = Machine(maxConnections: 1, maxWaiting: 10)
        _ = ["a", "b", "c"].map { pool.enqueue(NamedRequest($0)) }
        #expect(pool.shutdown().map(\.name) == ["b", "c"])
        #expect(pool.waitingCount == 0)
    }
}
