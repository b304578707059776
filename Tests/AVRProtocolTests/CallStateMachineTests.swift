import Testing
@testable import AVRProtocol

/// Transcripts of `CallStateMachine`: each event as the shell feeds it, and the actions it
/// must execute, in order.
@Suite struct CallStateMachineTests {
    typealias Machine = CallStateMachine
    static let uuid = CallUUID(high: 0x0123_4567_89ab_cdef, low: 0x8edc_ba98_7654_3210)

    /// The ending actions for `reason`, as the machine orders them.
    static func ending(_ reason: CallEndReason?, closeBackend: Bool = false, hangup: Bool,
                       identified: Bool = true) -> [Machine.Action] {
        [.endCall(reason)] + (closeBackend ? [.closeBackend] : [])
            + [.closeCallerLeg(hangup: hangup), .reportCallEnded(identified: identified)]
    }

    /// UUID, an answer at once (no shared registry), the backend made: live.
    static func live(found: Bool = true) -> Machine {
        var m = Machine()
        #expect(m.handle(.uuidReceived(uuid)) == [.announceCall(uuid), .claimRoute(uuid)])
        #expect(m.state == .claiming(deferredSince: nil))
        #expect(m.handle(.routeAnswered(found: found, at: 10)) == [.createBackend(routeFound: found)])
        #expect(m.state == .creatingBackend)
        #expect(m.handle(.backendCreated) == [.startPlayback, .startBackend, .releaseHeldInput])
        #expect(m.state == .live)
        return m
    }

    static func release(_ m: inout Machine, audio: (UnsafeRawBufferPointer) -> Void, digits: (UInt8) -> Void) {
        var held = m.takeHeldInput()
        held.release(audio: audio, digits: digits)
    }

    /// Every event, for checking that an ended call ignores them all.
    static let allEvents: [Machine.Event] = [
        .uuidReceived(uuid), .claimDeferred(at: 1), .routeAnswered(found: true, at: 2), .backendCreated,
        .backendReady, .backendFailed, .backendFinished(playoutEmpty: true), .backendFinished(playoutEmpty: false),
        .playoutDrained, .callerHungUp, .callerClosed, .callerError, .protocolError, .closedUnidentified, .shutdown,
    ]

    static func expectIgnoresEverything(_ m: inout Machine) {
        let state = m.state
        for event in allEvents {
            #expect(m.handle(event) == [], "\(event) after the end")
            #expect(m.state == state)
        }
        let frame: [UInt8] = [1, 2]
        #expect(frame.withUnsafeBytes { m.callerAudio($0) } == .dropped)
        #expect(m.callerDTMF(UInt8(ascii: "1")) == .dropped)
    }

    // MARK: Live calls

    @Test func callerAudioAndDTMFGoStraightToALiveBackend() {
        var m = Self.live()
        let frame: [UInt8] = [1, 2, 3, 4]
        #expect(frame.withUnsafeBytes { m.callerAudio($0) } == .forward)
        #expect(m.callerDTMF(UInt8(ascii: "5")) == .forward)
        #expect(m.handle(.backendReady) == [.noteBackendReady])
        var released = 0
        Self.release(&m, audio: { _ in released += 1 }, digits: { _ in released += 1 })
        #expect(released == 0)
    }

    @Test func callerHangsUpFirst() {
        var m = Self.live()
        #expect(m.handle(.callerHungUp) == Self.ending(.callerHangup, closeBackend: true, hangup: false))
        #expect(m.state == .ended(.callerHangup))
        #expect(m.isEnded)
        Self.expectIgnoresEverything(&m)
    }

    @Test func callerClosesOrReportsAnErrorWithoutAHangupBack() {
        var closed = Self.live()
        #expect(closed.handle(.callerClosed) == Self.ending(.callerClosed, closeBackend: true, hangup: false))
        var error = Self.live()
        #expect(error.handle(.callerError) == Self.ending(.callerError, closeBackend: true, hangup: false))
        // A peer that breaks the protocol is told to hang up.
        var broken = Self.live()
        #expect(broken.handle(.protocolError) == Self.ending(.protocolError, closeBackend: true, hangup: true))
    }

    @Test func backendFailsFirstThenTheCallerHangsUp() {
        var m = Self.live()
        // The backend closed itself: forgotten, not closed again; Asterisk is told to hang up.
        #expect(m.handle(.backendFailed) == [.forgetBackend] + Self.ending(.backendFailed, hangup: true))
        #expect(m.state == .ended(.backendFailed))
        // The caller's hangup that follows (Asterisk answering ours) ends nothing more.
        #expect(m.handle(.callerHungUp) == [])
        #expect(m.handle(.callerClosed) == [])
        #expect(m.state == .ended(.backendFailed))
    }

    @Test func backendThatCannotBeMadeEndsTheCallAsFailed() {
        var m = Machine()
        _ = m.handle(.uuidReceived(Self.uuid))
        #expect(m.handle(.routeAnswered(found: true, at: 5)) == [.createBackend(routeFound: true)])
        // No backend exists: nothing to forget or close.
        #expect(m.handle(.backendFailed) == Self.ending(.backendFailed, hangup: true))
        #expect(m.handle(.backendCreated) == [])
    }

    @Test func doubleEndEndsOnce() {
        var m = Self.live()
        #expect(m.handle(.shutdown) == Self.ending(.shutdown, closeBackend: true, hangup: true))
        #expect(m.handle(.shutdown) == [])
        #expect(m.handle(.callerHungUp) == [])
        #expect(m.handle(.backendFailed) == [])
        #expect(m.state == .ended(.shutdown))
        Self.expectIgnoresEverything(&m)
    }

    /// `DRAIN_TIMEOUT` passing reaches every call as the server's shutdown, whatever its
    /// state: a live call, one playing out, one still claiming its route.
    @Test func drainTimeoutEndsEveryCallAsShutdown() {
        var live = Self.live()
        #expect(live.handle(.shutdown) == Self.ending(.shutdown, closeBackend: true, hangup: true))
        var playingOut = Self.live()
        #expect(playingOut.handle(.backendFinished(playoutEmpty: false)) == [.forgetBackend])
        #expect(playingOut.handle(.shutdown) == Self.ending(.shutdown, hangup: true))
        var unnamed = Machine()
        #expect(unnamed.handle(.shutdown) == Self.ending(.shutdown, hangup: true, identified: false))
    }

    // MARK: The agent ends the call

    @Test func agentEndsTheCallThenItsAudioPlaysOutThenTheCallHangsUp() {
        var m = Self.live()
        #expect(m.handle(.backendFinished(playoutEmpty: false)) == [.forgetBackend])
        #expect(m.state == .playingOut)
        #expect(m.isPlayingOut)
        // Nothing goes to a backend that is gone.
        let frame: [UInt8] = [9, 9]
        #expect(frame.withUnsafeBytes { m.callerAudio($0) } == .dropped)
        #expect(m.callerDTMF(UInt8(ascii: "#")) == .dropped)
        #expect(m.handle(.backendReady) == [])
        #expect(m.handle(.backendFailed) == [])
        #expect(m.handle(.playoutDrained) == Self.ending(.backendClosed, hangup: true))
        #expect(m.state == .ended(.backendClosed))
        #expect(m.handle(.playoutDrained) == [])
    }

    @Test func agentEndsTheCallWithNothingQueuedHangsUpAtOnce() {
        var m = Self.live()
        #expect(m.handle(.backendFinished(playoutEmpty: true)) == [.forgetBackend] + Self.ending(.backendClosed, hangup: true))
    }

    @Test func callerHangsUpDuringPlayout() {
        var m = Self.live()
        _ = m.handle(.backendFinished(playoutEmpty: false))
        // The backend is gone already: nothing to close; the caller ended it: no hangup back.
        #expect(m.handle(.callerHungUp) == Self.ending(.callerHangup, hangup: false))
        #expect(m.handle(.playoutDrained) == [])
        #expect(m.state == .ended(.callerHangup))
    }

    @Test func playoutDrainedOutsidePlayoutIsNoEnd() {
        var m = Self.live()
        #expect(m.handle(.playoutDrained) == [])
        #expect(m.state == .live)
    }

    // MARK: The route's claim

    @Test func claimMissStillMakesTheDefaultBackend() {
        let m = Self.live(found: false)
        #expect(m.state == .live)
        #expect(m.uuid == Self.uuid)
    }

    @Test func deferredClaimPlaysTheLineAndTimesTheClaim() {
        var m = Machine()
        _ = m.handle(.uuidReceived(Self.uuid))
        #expect(m.handle(.claimDeferred(at: 1_000)) == [.startPlayback])
        #expect(m.state == .claiming(deferredSince: 1_000))
        #expect(m.handle(.claimDeferred(at: 2_000)) == [])
        #expect(m.handle(.routeAnswered(found: false, at: 251_000))
            == [.claimTook(nanoseconds: 250_000), .createBackend(routeFound: false)])
        #expect(m.handle(.routeAnswered(found: true, at: 300_000)) == [])
        #expect(m.handle(.backendCreated) == [.startPlayback, .startBackend, .releaseHeldInput])
    }

    /// A caller flooding DTMF during a claim: the first 64 digits are held and released in
    /// order, later ones are dropped and counted (the call's memory does not grow with them).
    @Test func heldDigitsAreBounded() {
        var m = Machine()
        _ = m.handle(.uuidReceived(Self.uuid))
        _ = m.handle(.claimDeferred(at: 0))
        let digits = (0..<1_000).map { UInt8(ascii: "0") + UInt8($0 % 10) }
        let inputs = digits.map { m.callerDTMF($0) }
        #expect(inputs.prefix(Machine.heldDigitsLimit).allSatisfy { $0 == .held })
        #expect(inputs.dropFirst(Machine.heldDigitsLimit).allSatisfy { $0 == .dropped })
        #expect(m.heldDigitsDropped == 1_000 - Machine.heldDigitsLimit)
        _ = m.handle(.routeAnswered(found: true, at: 100))
        _ = m.handle(.backendCreated)
        var released: [UInt8] = []
        Self.release(&m, audio: { _ in }, digits: { released.append($0) })
        #expect(released == Array(digits.prefix(Machine.heldDigitsLimit)))
    }

    @Test func heldAudioAndDigitsAreReleasedInOrder() {
        var m = Machine()
        _ = m.handle(.uuidReceived(Self.uuid))
        _ = m.handle(.claimDeferred(at: 0))
        let frames: [[UInt8]] = [[1, 1], [2, 2, 2, 2], [3]]
        for (index, frame) in frames.enumerated() {
            #expect(frame.withUnsafeBytes { m.callerAudio($0) } == .held)
            if index == 0 { #expect(m.callerDTMF(UInt8(ascii: "4")) == .held) }
        }
        #expect(m.callerDTMF(UInt8(ascii: "2")) == .held)
        _ = m.handle(.routeAnswered(found: true, at: 100))
        // Made but not yet live: still held.
        #expect([UInt8]([4]).withUnsafeBytes { m.callerAudio($0) } == .held)
        #expect(m.handle(.backendCreated) == [.startPlayback, .startBackend, .releaseHeldInput])
        var audio: [[UInt8]] = []
        var digits: [UInt8] = []
        Self.release(&m, audio: { audio.append(Array($0)) }, digits: { digits.append($0) })
        #expect(audio == frames + [[4]])
        #expect(digits == Array("42".utf8))
        // Once released, nothing is held any more and new input goes straight on.
        Self.release(&m, audio: { audio.append(Array($0)) }, digits: { digits.append($0) })
        #expect(audio.count == 4 && digits.count == 2)
        #expect([UInt8]([5]).withUnsafeBytes { m.callerAudio($0) } == .forward)
    }

    @Test func heldAudioIsBoundedOldestFirst() {
        var m = Machine(heldAudioCapacity: 4)
        _ = m.handle(.uuidReceived(Self.uuid))
        for byte: UInt8 in 1...3 { _ = [byte, byte].withUnsafeBytes { m.callerAudio($0) } }
        #expect(m.heldAudioDroppedBytes == 2)
        _ = m.handle(.routeAnswered(found: true, at: 0))
        _ = m.handle(.backendCreated)
        var audio: [[UInt8]] = []
        Self.release(&m, audio: { audio.append(Array($0)) }, digits: { _ in })
        #expect(audio == [[2, 2], [3, 3]])
    }

    @Test func shutdownDuringClaimDropsTheHeldInputAndIgnoresTheLateAnswer() {
        var m = Machine()
        _ = m.handle(.uuidReceived(Self.uuid))
        #expect(m.handle(.claimDeferred(at: 0)) == [.startPlayback])
        _ = [UInt8]([7, 7]).withUnsafeBytes { m.callerAudio($0) }
        _ = m.callerDTMF(UInt8(ascii: "*"))
        // No backend exists yet: none to close; Asterisk is told to hang up.
        #expect(m.handle(.shutdown) == Self.ending(.shutdown, hangup: true))
        // Redis answers after the end: no backend is made.
        #expect(m.handle(.routeAnswered(found: true, at: 50)) == [])
        var released = 0
        Self.release(&m, audio: { _ in released += 1 }, digits: { _ in released += 1 })
        #expect(released == 0)
        Self.expectIgnoresEverything(&m)
    }

    @Test func callerHangsUpDuringClaim() {
        var m = Machine()
        _ = m.handle(.uuidReceived(Self.uuid))
        _ = m.handle(.claimDeferred(at: 0))
        #expect(m.handle(.callerClosed) == Self.ending(.callerClosed, hangup: false))
        #expect(m.handle(.routeAnswered(found: false, at: 9)) == [])
    }

    // MARK: Before the UUID

    @Test func inputBeforeTheUUIDIsDropped() {
        var m = Machine()
        #expect([UInt8]([1]).withUnsafeBytes { m.callerAudio($0) } == .dropped)
        #expect(m.callerDTMF(UInt8(ascii: "1")) == .dropped)
        // Events of later states mean nothing yet.
        #expect(m.handle(.routeAnswered(found: true, at: 0)) == [])
        #expect(m.handle(.backendCreated) == [])
        #expect(m.handle(.backendFinished(playoutEmpty: true)) == [])
        #expect(m.handle(.backendFailed) == [])
        #expect(m.state == .awaitingUUID)
    }

    @Test func connectionClosedBeforeItsUUIDIsNoCall() {
        var unnamed = Machine()
        // No reason, no hangup, nothing reported as a call.
        #expect(unnamed.handle(.closedUnidentified) == Self.ending(nil, hangup: false, identified: false))
        #expect(unnamed.state == .ended(nil))
        #expect(unnamed.uuid == nil)
        Self.expectIgnoresEverything(&unnamed)
        var broken = Machine()
        #expect(broken.handle(.protocolError) == Self.ending(.protocolError, hangup: true, identified: false))
        var gone = Machine()
        #expect(gone.handle(.callerClosed) == Self.ending(.callerClosed, hangup: false, identified: false))
    }

    @Test func aSecondUUIDChangesNothing() {
        var m = Self.live()
        let other = CallUUID(high: 1, low: 2)
        #expect(m.handle(.uuidReceived(other)) == [])
        #expect(m.uuid == Self.uuid)
        #expect(m.state == .live)
    }
}
