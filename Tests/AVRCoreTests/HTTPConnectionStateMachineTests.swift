import Testing
@testable import AVRCore

/// Transcripts of `HTTPConnectionStateMachine`: one event in, the actions out, the state after.
@Suite struct HTTPConnectionStateMachineTests {
    typealias Machine = HTTPConnectionStateMachine
    let linger = LingeringClose.Bounds(totalMilliseconds: 5_000, idleMilliseconds: 2_000, maxBytes: 1_000)
    var machine: Machine {
        Machine(configuration: .init(requestTimeout: 10_000, idleTimeout: 300_000, firstRequestTimeout: 20_000,
                                     maxUnsentBytes: 65_536, linger: linger))
    }

    @Test func keepAliveRequestsAlternateBetweenIdleAndAwaitingResponse() {
        var m = machine
        // Before the first request the shorter first-request timer runs.
        #expect(m.started() == [.armTimer(milliseconds: 20_000), .startReading])
        #expect(m.acceptsRequests)
        // First bytes of a request: the request timer replaces the idle one.
        #expect(m.parsed(.needMore(inMessage: true, expectsContinue: false), now: 0) == [.armTimer(milliseconds: 10_000)])
        #expect(m.state == .receiving(stopping: false))
        // More bytes: the request timer keeps running from the first byte.
        #expect(m.parsed(.needMore(inMessage: true, expectsContinue: false), now: 5) == [])
        #expect(m.parsed(.request(keepAlive: true), now: 7) == [.stopTimer, .dispatch])
        #expect(m.state == .awaitingResponse(stopping: false))
        #expect(!m.acceptsRequests)
        // The request timer cannot fire while the handler works; a stale fire does nothing.
        #expect(m.timerFired(now: 20_000) == [])
        #expect(m.responded(keepAlive: true, now: 30) == [.writeResponse(keepAlive: true)])
        #expect(m.state == .sending)
        // The kernel took it all: idle (now with the keep-alive timer), parse what is parked.
        #expect(m.responseWritten(unsentBytes: 0) == [.armTimer(milliseconds: 300_000), .resumeParsing])
        #expect(m.state == .idle)
        // A whole request in one read.
        #expect(m.parsed(.request(keepAlive: true), now: 40) == [.armTimer(milliseconds: 10_000), .stopTimer, .dispatch])
        #expect(m.responded(keepAlive: true, now: 41) == [.writeResponse(keepAlive: true)])
        #expect(m.responseWritten(unsentBytes: 65_536) == [.armTimer(milliseconds: 300_000), .resumeParsing])
    }

    @Test func pipelinedRequestsWaitForEachResponse() {
        var m = machine
        _ = m.started()
        _ = m.parsed(.request(keepAlive: true), now: 0)
        // The shell parks the next request's bytes: nothing is parsed while a response is due.
        #expect(!m.acceptsRequests && !m.hasEnded)
        #expect(m.parsed(.request(keepAlive: true), now: 1) == [], "no parse outcome is accepted while awaiting a response")
        // The response resumes parsing of what is parked.
        _ = m.responded(keepAlive: true, now: 2)
        #expect(m.responseWritten(unsentBytes: 10).last == .resumeParsing)
        #expect(m.parsed(.request(keepAlive: false), now: 2) == [.armTimer(milliseconds: 10_000), .stopTimer, .dispatch])
    }

    @Test func connectionCloseEndsWithALingeringDrain() {
        var m = machine
        _ = m.started()
        _ = m.parsed(.request(keepAlive: false), now: 100)
        #expect(m.responded(keepAlive: false, now: 200) == [
            .writeResponse(keepAlive: false), .shutdownWrite, .startReading, .armTimer(milliseconds: 2_000), .releasePending,
        ])
        #expect(m.state == .lingering(LingeringClose(bounds: linger, now: 200)))
        #expect(m.hasEnded && !m.acceptsRequests)
        // Input after the response is counted and dropped; the drain ends on the client's EOF.
        #expect(m.discarded(10, now: 300) == [])
        guard case .lingering(let drain) = m.state else { Issue.record("not lingering"); return }
        #expect(drain.discardedBytes == 10)
        #expect(m.peerClosed() == [.stopTimer, .endLingering(drain, why: .peerClosed)])
        #expect(m.state == .closed)
        #expect(m.peerClosed() == [])
    }

    @Test(arguments: [
        (HTTPRequestParser.Failure.malformed("bad"), 400),
        (.headersTooLarge, 431),
        (.bodyTooLarge, 413),
    ])
    func parseFailuresAnswerThenLinger(failure: HTTPRequestParser.Failure, status: Int) {
        var m = machine
        _ = m.started()
        _ = m.parsed(.needMore(inMessage: true, expectsContinue: false), now: 0)
        #expect(m.parsed(.failure(failure), now: 50) == [
            .writeError(status: status), .shutdownWrite, .startReading, .armTimer(milliseconds: 2_000),
        ])
        #expect(m.state == .lingering(LingeringClose(bounds: linger, now: 50)))
    }

    @Test func anIncompleteRequestTimesOutWith408AndLingers() {
        var m = machine
        _ = m.started()
        _ = m.parsed(.needMore(inMessage: true, expectsContinue: false), now: 0)
        #expect(m.timerFired(now: 10_000) == [
            .releasePending, .writeError(status: 408), .shutdownWrite, .startReading, .armTimer(milliseconds: 2_000),
        ])
        #expect(m.state == .lingering(LingeringClose(bounds: linger, now: 10_000)))
    }

    @Test func theLingeringDrainEndsAtItsBounds() {
        var m = machine
        _ = m.started()
        _ = m.parsed(.failure(.bodyTooLarge), now: 0)
        // Input keeps coming: the idle bound moves, the timer is re-armed for what is left.
        #expect(m.discarded(1, now: 1_500) == [])
        #expect(m.timerFired(now: 2_000) == [.armTimer(milliseconds: 1_500)])
        guard case .lingering(let drain) = m.state else { Issue.record("not lingering"); return }
        #expect(m.timerFired(now: 3_500) == [.stopTimer, .endLingering(drain, why: .idle)])

        var budget = machine
        _ = budget.started()
        _ = budget.parsed(.failure(.malformed("x")), now: 0)
        _ = budget.discarded(999, now: 1)
        guard case .lingering(let spent) = budget.state else { Issue.record("not lingering"); return }
        var expected = spent
        _ = expected.discarded(1, now: 2)
        #expect(budget.discarded(1, now: 2) == [.stopTimer, .endLingering(expected, why: .byteLimit)])

        var total = machine
        _ = total.started()
        _ = total.parsed(.failure(.malformed("x")), now: 0)
        var now: UInt64 = 0
        while now < 4_500 { now += 500; _ = total.discarded(1, now: now) }
        #expect(total.timerFired(now: 5_000).last.map { if case .endLingering(_, .timeLimit) = $0 { true } else { false } } == true)
    }

    @Test func theHalfCloseFailingEndsTheDrain() {
        var m = machine
        _ = m.started()
        _ = m.parsed(.request(keepAlive: false), now: 0)
        _ = m.responded(keepAlive: false, now: 0)
        #expect(m.shutdownFailed() == [.stopTimer, .endLingering(LingeringClose(bounds: linger, now: 0), why: .peerClosed)])
        #expect(m.shutdownFailed() == [])
    }

    @Test func idleTimeoutAndPeerEOF() {
        var idle = machine
        _ = idle.started()
        #expect(idle.timerFired(now: 300_000) == [.stopTimer, .close])
        #expect(idle.state == .closed)

        // EOF in the middle of a request: just close (nobody is left to answer).
        var midRequest = machine
        _ = midRequest.started()
        _ = midRequest.parsed(.needMore(inMessage: true, expectsContinue: false), now: 0)
        #expect(midRequest.peerClosed() == [.stopTimer, .close])
        #expect(midRequest.responded(keepAlive: true, now: 1) == [])

        // EOF while the handler works: close; its late answer finds nothing to do.
        var busy = machine
        _ = busy.started()
        _ = busy.parsed(.request(keepAlive: true), now: 0)
        #expect(busy.peerClosed() == [.stopTimer, .close])
        #expect(busy.responded(keepAlive: true, now: 1) == [])
    }

    @Test func expectContinueIsAnsweredOnce() {
        var m = machine
        _ = m.started()
        #expect(m.parsed(.needMore(inMessage: true, expectsContinue: true), now: 0) == [.armTimer(milliseconds: 10_000), .sendContinue])
        #expect(m.parsed(.needMore(inMessage: true, expectsContinue: false), now: 1) == [])
    }

    @Test func separatorsAloneGoBackToIdle() {
        var m = machine
        _ = m.started()
        #expect(m.parsed(.needMore(inMessage: false, expectsContinue: false), now: 0) == [
            .armTimer(milliseconds: 10_000), .armTimer(milliseconds: 20_000),
        ])
        #expect(m.state == .idle)
    }

    @Test func serverStopClosesIdleAndLingeringNowAndBusyAfterTheResponse() {
        var idle = machine
        _ = idle.started()
        #expect(idle.serverStopping() == [.stopTimer, .close])

        var lingering = machine
        _ = lingering.started()
        _ = lingering.parsed(.failure(.bodyTooLarge), now: 0)
        #expect(lingering.serverStopping() == [.stopTimer, .close])

        // Busy: the response goes out with Connection: close, then close after the flush
        // (a stopping server does not wait for clients).
        var busy = machine
        _ = busy.started()
        _ = busy.parsed(.request(keepAlive: true), now: 0)
        #expect(busy.serverStopping() == [])
        #expect(busy.state == .awaitingResponse(stopping: true))
        #expect(busy.responded(keepAlive: true, now: 5) == [
            .writeResponse(keepAlive: false), .stopReading, .stopTimer, .closeAfterFlush, .releasePending,
        ])
        #expect(busy.state == .closingAfterFlush)
        #expect(busy.discarded(100, now: 6) == [])

        // Mid-request: the request still gets its answer; a failure closes after the flush.
        var receiving = machine
        _ = receiving.started()
        _ = receiving.parsed(.needMore(inMessage: true, expectsContinue: false), now: 0)
        #expect(receiving.serverStopping() == [])
        #expect(receiving.parsed(.request(keepAlive: true), now: 1) == [.stopTimer, .dispatch])
        #expect(receiving.state == .awaitingResponse(stopping: true))

        var timedOut = machine
        _ = timedOut.started()
        _ = timedOut.parsed(.needMore(inMessage: true, expectsContinue: false), now: 0)
        _ = timedOut.serverStopping()
        #expect(timedOut.timerFired(now: 10_000) == [
            .releasePending, .writeError(status: 408), .stopReading, .stopTimer, .closeAfterFlush,
        ])
    }

    /// A client that pipelines requests and never reads: once a response leaves more than
    /// `maxUnsentBytes` unsent, nothing is read or answered until the output drains.
    @Test func unreadResponsesStopReadingUntilTheOutputDrains() {
        var m = machine
        _ = m.started()
        _ = m.parsed(.request(keepAlive: true), now: 0)
        #expect(m.responded(keepAlive: true, now: 1) == [.writeResponse(keepAlive: true)])
        #expect(m.responseWritten(unsentBytes: 65_537) == [.stopReading, .armTimer(milliseconds: 10_000)])
        #expect(m.state == .backlogged)
        #expect(!m.acceptsRequests && !m.hasEnded && !m.isIdle)
        // Parked pipelined requests are not parsed meanwhile.
        #expect(m.parsed(.request(keepAlive: true), now: 2) == [])
        #expect(m.responseWritten(unsentBytes: 0) == [], "only a drain resumes")
        // The client read it all: idle again, parse what is parked (which reads on).
        #expect(m.outputDrained() == [.armTimer(milliseconds: 300_000), .resumeParsing])
        #expect(m.state == .idle)
        #expect(m.outputDrained() == [], "a drain while idle changes nothing")

        // A client that never reads: closed when the request timer fires.
        var stalled = machine
        _ = stalled.started()
        _ = stalled.parsed(.request(keepAlive: true), now: 0)
        _ = stalled.responded(keepAlive: true, now: 1)
        _ = stalled.responseWritten(unsentBytes: 1_000_000)
        #expect(stalled.timerFired(now: 10_001) == [.stopTimer, .closeStalled])
        #expect(stalled.state == .closed)
        #expect(stalled.outputDrained() == [])

        // Server stop or the peer's EOF while backlogged: close now.
        var stopping = machine
        _ = stopping.started()
        _ = stopping.parsed(.request(keepAlive: true), now: 0)
        _ = stopping.responded(keepAlive: true, now: 1)
        _ = stopping.responseWritten(unsentBytes: 1_000_000)
        #expect(stopping.serverStopping() == [.stopTimer, .close])
        var gone = machine
        _ = gone.started()
        _ = gone.parsed(.request(keepAlive: true), now: 0)
        _ = gone.responded(keepAlive: true, now: 1)
        _ = gone.responseWritten(unsentBytes: 1_000_000)
        #expect(gone.peerClosed() == [.stopTimer, .close])
    }

    /// Pipelined requests answered fast (the kernel takes everything) still stop once a loop
    /// turn has answered `maxUnsentBytes`: the rest waits for the next turn.
    @Test func manyAnswersInOneTurnYieldToTheLoop() {
        var m = machine
        _ = m.started()
        _ = m.parsed(.request(keepAlive: true), now: 0)
        _ = m.responded(keepAlive: true, now: 1)
        #expect(m.responseWritten(unsentBytes: 0, writtenThisTurn: 65_537) == [.stopReading, .armTimer(milliseconds: 1)])
        #expect(m.state == .yielding)
        #expect(!m.acceptsRequests && !m.isIdle)
        #expect(m.parsed(.request(keepAlive: true), now: 2) == [])
        // The 1 ms timer fires on a later turn: answer what is parked.
        #expect(m.timerFired(now: 3) == [.armTimer(milliseconds: 300_000), .resumeParsing])
        #expect(m.state == .idle)
        // Stopping while yielding: close now.
        _ = m.parsed(.request(keepAlive: true), now: 3)
        _ = m.responded(keepAlive: true, now: 4)
        _ = m.responseWritten(unsentBytes: 0, writtenThisTurn: 100_000)
        #expect(m.serverStopping() == [.stopTimer, .close])
        #expect(m.timerFired(now: 5) == [])
    }

    /// A connection that never sends a request is closed after the first-request timeout;
    /// after one answered request, idle uses the keep-alive timeout.
    @Test func silentConnectionsGetTheShortFirstRequestTimeout() {
        var silent = machine
        #expect(silent.started() == [.armTimer(milliseconds: 20_000), .startReading])
        #expect(silent.isIdle)
        #expect(silent.timerFired(now: 20_000) == [.stopTimer, .close])

        var served = machine
        _ = served.started()
        _ = served.parsed(.request(keepAlive: true), now: 0)
        _ = served.responded(keepAlive: true, now: 1)
        #expect(served.responseWritten(unsentBytes: 0).first == .armTimer(milliseconds: 300_000))
        // Separators after a request keep the keep-alive timeout.
        #expect(served.parsed(.needMore(inMessage: false, expectsContinue: false), now: 2) == [
            .armTimer(milliseconds: 10_000), .armTimer(milliseconds: 300_000),
        ])
    }

    @Test func closedIsFinal() {
        var m = machine
        _ = m.started()
        _ = m.timerFired(now: 300_000)
        m.streamClosed()
        #expect(m.parsed(.request(keepAlive: true), now: 1) == [])
        #expect(m.timerFired(now: 2) == [])
        #expect(m.discarded(1, now: 3) == [])
        #expect(m.serverStopping() == [])
        #expect(m.shutdownFailed() == [])
    }
}
