import Testing
@testable import AVRCore

/// Transcripts of the pure stream states: one event, what the stream must do, the state after.
@Suite struct TCPStreamWriteStateTests {
    typealias State = TCPStream.WriteState

    @Test func aWriteTheKernelCannotTakeWaitsThenDrains() {
        var state = State.idle
        #expect(state.acceptsWrites && !state.isWriting)
        state.writeStarted()
        #expect(state == .writing(then: .drain))
        state.writeStarted()  // more bytes queued behind the one in flight
        #expect(state == .writing(then: .drain))
        let r1 = state.flushed()
        #expect(r1 == .drain)
        #expect(state == .idle)
        let r2 = state.flushed()
        #expect(r2 == nil, "nothing was in flight")
        #expect(state == .idle)
    }

    @Test func shutdownWhileIdleSendsTheFINAtOnce() {
        var state = State.idle
        let r3 = state.shutdown()
        #expect(r3 == .now)
        #expect(state == .halfClosed && !state.acceptsWrites)
        let r4 = state.shutdown()
        #expect(r4 == .ignored)
        let r5 = state.closeAfterFlush()
        #expect(r5 == .now, "nothing is in flight")
        let r6 = state.close()
        #expect(r6)
        #expect(state == .closed)
    }

    @Test func shutdownWhileWritingWaitsForTheQueuedBytes() {
        var state = State.writing(then: .drain)
        let r7 = state.shutdown()
        #expect(r7 == .afterFlush)
        #expect(state == .writing(then: .shutDown))
        #expect(!state.acceptsWrites, "no write after shutdown")
        let r8 = state.shutdown()
        #expect(r8 == .ignored)
        let r9 = state.flushed()
        #expect(r9 == .shutDown)
        #expect(state == .halfClosed)
    }

    @Test func closeAfterFlushWaitsForAWriteInFlightOnly() {
        var idle = State.idle
        let r10 = idle.closeAfterFlush()
        #expect(r10 == .now)
        #expect(idle == .idle, "close() moves it on")
        var writing = State.writing(then: .drain)
        let r11 = writing.closeAfterFlush()
        #expect(r11 == .afterFlush)
        #expect(writing == .writing(then: .close))
        #expect(writing.acceptsWrites, "bytes written meanwhile still go out before the close")
        let r12 = writing.closeAfterFlush()
        #expect(r12 == .ignored)
        let r13 = writing.shutdown()
        #expect(r13 == .ignored)
        let r14 = writing.flushed()
        #expect(r14 == .close)
        let r15 = writing.close()
        #expect(r15)
        #expect(writing == .closed)
    }

    @Test func closeAfterFlushSupersedesAPendingShutdown() {
        var state = State.writing(then: .drain)
        _ = state.shutdown()
        let r16 = state.closeAfterFlush()
        #expect(r16 == .afterFlush)
        let r17 = state.flushed()
        #expect(r17 == .close)
    }

    @Test func aFailedWriteIsReportedOnceAndRefusesLaterWrites() {
        var state = State.idle
        let r18 = state.writeFailed()
        #expect(r18)
        #expect(state == .failed && !state.acceptsWrites)
        let r19 = state.writeFailed()
        #expect(!r19, "reported once")
        let r20 = state.flushed()
        #expect(r20 == nil)
        let r21 = state.closeAfterFlush()
        #expect(r21 == .now)
        var writing = State.writing(then: .shutDown)
        let r22 = writing.writeFailed()
        #expect(r22, "uv_write refused the queued bytes")
        #expect(writing == .failed)
    }

    @Test func shutdownAfterAFailureStillSendsTheFIN() {
        var state = State.failed
        let r23 = state.shutdown()
        #expect(r23 == .now)
        #expect(state == .halfClosed)
        let r24 = state.writeFailed()
        #expect(!r24)
    }

    @Test func closedIsFinal() {
        var state = State.writing(then: .drain)
        let r25 = state.close()
        #expect(r25)
        let r26 = state.close()
        #expect(!r26)
        #expect(state == .closed && !state.acceptsWrites)
        let r27 = state.flushed()
        #expect(r27 == nil)
        let r28 = state.shutdown()
        #expect(r28 == .ignored)
        let r29 = state.closeAfterFlush()
        #expect(r29 == .ignored)
        let r30 = state.writeFailed()
        #expect(!r30)
        state.writeStarted()
        #expect(state == .closed)
    }
}

@Suite struct TCPStreamReadStateTests {
    typealias State = TCPStream.ReadState

    @Test func startAndStop() {
        var state = State.stopped
        let r31 = state.start()
        #expect(r31)
        let r32 = state.start()
        #expect(!r32, "already reading")
        let r33 = state.stop()
        #expect(r33)
        let r34 = state.stop()
        #expect(!r34)
        #expect(state == .stopped)
    }

    @Test func aYieldPausesUntilTheNextTurn() {
        var state = State.reading
        let r35 = state.yield()
        #expect(r35)
        #expect(state == .yielded(resume: true))
        let r36 = state.yield()
        #expect(!r36, "one pause at a time")
        let r37 = state.resume()
        #expect(r37)
        #expect(state == .reading)
        var stopped = State.stopped
        let r38 = stopped.yield()
        #expect(!r38, "only a reading stream yields")
    }

    @Test func theOwnersWishDuringAPauseDecidesTheResume() {
        var state = State.reading
        _ = state.yield()
        let r39 = state.stop()
        #expect(!r39, "uv_read_stop already done")
        #expect(state == .yielded(resume: false))
        let r40 = state.resume()
        #expect(!r40)
        #expect(state == .stopped)

        _ = state.start()
        _ = state.yield()
        _ = state.stop()
        let r41 = state.start()
        #expect(!r41, "the pending resume starts it")
        #expect(state == .yielded(resume: true))
        let r42 = state.resume()
        #expect(r42)
        #expect(state == .reading)
        let r43 = state.resume()
        #expect(!r43, "no pause pending")
    }

    @Test func aFailedStartStops() {
        var state = State.stopped
        _ = state.start()
        state.startFailed()
        #expect(state == .stopped)
    }
}

@Suite struct TLSStreamStateTests {
    typealias State = TLSStream.State

    @Test func handshakeThenWritesThenClose() {
        var state = State.open(.handshaking)
        #expect(!state.isEstablished && !state.acceptsWrites && !state.isClosing)
        state.established(resumed: true)
        #expect(state == .open(.established(resumed: true)))
        #expect(state.isEstablished && state.acceptsWrites)
        let r44 = state.close()
        #expect(r44)
        #expect(state == .closing(.established(resumed: true)))
        #expect(state.isEstablished, "a closing stream remembers its handshake")
        let again = state.close()
        #expect(!state.acceptsWrites && !again)
    }

    @Test func aWriteFailureKeepsTheSessionAndRefusesWrites() {
        var state = State.open(.established(resumed: false))
        let r45 = state.writeFailed()
        #expect(r45)
        #expect(state == .writeFailed(resumed: false))
        #expect(!state.acceptsWrites && !state.isClosing && state.isEstablished)
        let r46 = state.writeFailed()
        #expect(!r46)
        let r47 = state.close()
        #expect(r47)
        #expect(state == .closing(.established(resumed: false)))
    }

    @Test func nothingFailsOrEstablishesOutsideItsState() {
        var handshaking = State.open(.handshaking)
        let r48 = handshaking.writeFailed()
        #expect(!r48, "no write before the handshake")
        #expect(handshaking == .open(.handshaking))
        var closing = State.closing(.handshaking)
        closing.established(resumed: false)
        #expect(closing == .closing(.handshaking))
        let r49 = closing.writeFailed()
        #expect(!r49)
    }
}
