/// The life of one call, without I/O: which state it is in, what the caller's audio and DTMF
/// do in each, and the one ending. `CallSession` is the shell: it feeds the events of the
/// caller's leg, the route claim, the speech backend, the playback ticks and the server,
/// and executes the actions in the order given; time comes in as values (loop nanoseconds).
///
/// ```
/// awaitingUUID ─uuid─▶ claiming ─route answered─▶ creatingBackend ─created─▶ live
///                      (input held)                                         │
///                                            agent ended the call ─────────▶ playingOut
///                                            (audio still queued)            │ drained
/// any state but ended ─ caller hangup/close/error, protocol error, ─────────▶ ended
///                       backend failed, shutdown, unidentified close
/// ```
///
/// - **Claiming.** The route `POST /call` stored is being claimed (at once from this
///   process, or from the shared registry later). Caller audio and DTMF arriving meanwhile
///   are held here (audio bounded, oldest dropped) and released in arrival order to the
///   backend once it exists. A deferred claim starts the playback ticks at once, so the line
///   does not go dead while Redis answers.
/// - **Ending.** A call ends exactly once, whoever ends it. The ending actions come in this
///   order: `endCall` (playback stops), `closeBackend` (only when one is open and did not
///   close itself), `closeCallerLeg` (with a hangup message unless the caller ended the call
///   or it never became one), `reportCallEnded` (metrics, quality line and `call_ended`
///   only for a connection that named its call). Every event after the end is ignored.
/// - **Playing out.** The agent ending the conversation in good order does not cut off what
///   it said: the call ends with `sts_closed` once the playback queue is empty, at once
///   when it already is. The caller may still hang up meanwhile.
package struct CallStateMachine {
    package enum State: Sendable, Equatable {
        /// The connection has not named its call yet: not a call.
        case awaitingUUID
        /// The route is being claimed; caller input is held. `deferredSince`: when the claim
        /// went asynchronous (nil while its answer may still come at once).
        case claiming(deferredSince: UInt64?)
        /// The route is known and the backend is being made.
        case creatingBackend
        /// The backend exists: caller input goes to it.
        case live
        /// The backend ended the conversation; queued agent audio plays, then the call ends.
        case playingOut
        /// Over; the reason is nil for a connection closed before it named its call.
        case ended(CallEndReason?)
    }

    package enum Event: Sendable, Equatable {
        /// The leg named the call.
        case uuidReceived(CallUUID)
        /// The route's claim went asynchronous (the shared registry answers later).
        case claimDeferred(at: UInt64)
        /// The route's claim was answered; `found` false: no `POST /call` for this call.
        case routeAnswered(found: Bool, at: UInt64)
        /// The backend for the route exists (it is not started yet).
        case backendCreated
        /// The backend opened (its connection is up).
        case backendReady
        /// The backend could not be made, or failed and closed itself.
        case backendFailed
        /// The backend ended the conversation in good order and closed itself.
        case backendFinished(playoutEmpty: Bool)
        /// The playback queue ran empty while playing out.
        case playoutDrained
        /// Asterisk sent a hangup.
        case callerHungUp
        /// The caller's connection closed without a hangup.
        case callerClosed
        /// Asterisk reported an error.
        case callerError
        /// The caller's leg broke its protocol.
        case protocolError
        /// Closed by the budget of connections that have not named their call.
        case closedUnidentified
        /// The server is stopping (a second signal, or the end of `DRAIN_TIMEOUT`).
        case shutdown
    }

    package enum Action: Sendable, Equatable {
        /// The connection is a call from now on: its log lines name it, it is counted and
        /// `call_started` is sent.
        case announceCall(CallUUID)
        /// Claim the route: answer with `routeAnswered` (at once or later) and, when the
        /// answer comes later, `claimDeferred` now.
        case claimRoute(CallUUID)
        /// Put the call on the playback ticks (the line never goes dead).
        case startPlayback
        /// The deferred claim took this long.
        case claimTook(nanoseconds: UInt64)
        /// Make the backend for the route; answer with `backendCreated` or `backendFailed`.
        case createBackend(routeFound: Bool)
        case startBackend
        /// Hand the held caller audio, then the held DTMF, to the backend in arrival order
        /// (`takeHeldInput`).
        case releaseHeldInput
        /// The backend's connection is up (its connect time is measured).
        case noteBackendReady
        /// The backend closed itself: drop it without closing it.
        case forgetBackend
        /// The call ends, once, for this reason: playback stops.
        case endCall(CallEndReason?)
        /// Close the open backend (it did not close itself).
        case closeBackend
        /// Close the caller's connection, telling Asterisk to hang up first when `hangup`.
        case closeCallerLeg(hangup: Bool)
        /// Losses are logged; for a call (`identified`), the metrics, the quality line and
        /// `call_ended`.
        case reportCallEnded(identified: Bool)
    }

    /// What to do with one frame of caller audio or one DTMF digit.
    package enum Input: Sendable, Equatable {
        /// To the backend now.
        case forward
        /// Kept by the machine until the backend exists.
        case held
        /// No backend to take it (before the UUID, while playing out, after the end).
        case dropped
    }

    package private(set) var state = State.awaitingUUID
    package private(set) var uuid: CallUUID?
    private var heldAudio: HeldAudio
    private var heldDigits: [UInt8] = []
    /// Digits kept while claiming, at most (a caller flooding DTMF messages during a claim
    /// cannot grow the call's memory; later digits are dropped and counted).
    package static let heldDigitsLimit = 64
    /// DTMF digits dropped beyond ``heldDigitsLimit`` while claiming.
    package private(set) var heldDigitsDropped = 0

    /// `heldAudioCapacity`: bytes of caller audio kept while claiming (3 s of 8 kHz PCM).
    package init(heldAudioCapacity: Int = 3 * 16_000) {
        heldAudio = HeldAudio(capacity: heldAudioCapacity)
    }

    package var isEnded: Bool {
        if case .ended = state { return true }
        return false
    }

    /// The backend ended the conversation and its queued audio is playing out.
    package var isPlayingOut: Bool { state == .playingOut }

    /// Caller audio bytes dropped from the held audio (beyond its capacity).
    package var heldAudioDroppedBytes: Int { heldAudio.droppedBytes }

    package mutating func handle(_ event: Event) -> [Action] {
        switch (state, event) {
        case (.ended, _):
            return []
        case (.awaitingUUID, .uuidReceived(let uuid)):
            self.uuid = uuid
            state = .claiming(deferredSince: nil)
            return [.announceCall(uuid), .claimRoute(uuid)]
        case (_, .uuidReceived):
            return []
        case (.claiming(nil), .claimDeferred(let now)):
            state = .claiming(deferredSince: now)
            return [.startPlayback]
        case (_, .claimDeferred):
            return []
        case (.claiming(let since), .routeAnswered(let found, let now)):
            state = .creatingBackend
            let create = Action.createBackend(routeFound: found)
            guard let since else { return [create] }
            return [.claimTook(nanoseconds: now &- since), create]
        case (_, .routeAnswered):
            return []
        case (.creatingBackend, .backendCreated):
            state = .live
            return [.startPlayback, .startBackend, .releaseHeldInput]
        case (_, .backendCreated):
            return []
        case (.live, .backendReady):
            return [.noteBackendReady]
        case (_, .backendReady):
            return []
        case (.live, .backendFinished(let playoutEmpty)):
            guard playoutEmpty else {
                state = .playingOut
                return [.forgetBackend]
            }
            return [.forgetBackend] + end(.backendClosed, hangup: true, backendOpen: false)
        case (_, .backendFinished):
            return []
        case (.playingOut, .playoutDrained):
            return end(.backendClosed, hangup: true, backendOpen: false)
        case (_, .playoutDrained):
            return []
        case (.live, .backendFailed):
            return [.forgetBackend] + end(.backendFailed, hangup: true, backendOpen: false)
        case (.creatingBackend, .backendFailed):
            return end(.backendFailed, hangup: true, backendOpen: false)
        case (_, .backendFailed):
            return []
        case (_, .callerHungUp):
            return end(.callerHangup, hangup: false)
        case (_, .callerClosed):
            return end(.callerClosed, hangup: false)
        case (_, .callerError):
            return end(.callerError, hangup: false)
        case (_, .protocolError):
            return end(.protocolError, hangup: true)
        case (_, .closedUnidentified):
            return end(nil, hangup: false)
        case (_, .shutdown):
            return end(.shutdown, hangup: true)
        }
    }

    /// The ending, from whatever state the call is in.
    private mutating func end(_ reason: CallEndReason?, hangup: Bool, backendOpen: Bool? = nil) -> [Action] {
        let open = backendOpen ?? (state == .live)
        state = .ended(reason)
        heldAudio.drain { _ in }
        heldDigits = []
        var actions: [Action] = [.endCall(reason)]
        if open { actions.append(.closeBackend) }
        actions.append(.closeCallerLeg(hangup: hangup))
        actions.append(.reportCallEnded(identified: uuid != nil))
        return actions
    }

    // MARK: Caller input

    /// One frame of the caller's audio (8 kHz PCM): held while the route is claimed.
    package mutating func callerAudio(_ pcm: UnsafeRawBufferPointer) -> Input {
        switch state {
        case .live: return .forward
        case .claiming, .creatingBackend:
            heldAudio.append(pcm)
            return .held
        case .awaitingUUID, .playingOut, .ended: return .dropped
        }
    }

    /// One DTMF digit (its ASCII byte): held while the route is claimed.
    package mutating func callerDTMF(_ digit: UInt8) -> Input {
        switch state {
        case .live: return .forward
        case .claiming, .creatingBackend:
            guard heldDigits.count < Self.heldDigitsLimit else {
                heldDigitsDropped += 1
                return .dropped
            }
            heldDigits.append(digit)
            return .held
        case .awaitingUUID, .playingOut, .ended: return .dropped
        }
    }

    /// What was held while the route was claimed, taken out of the machine for the
    /// `releaseHeldInput` action (taken, not handed out by callback: the backend it goes to
    /// may call back into the shell, which reads the machine).
    package mutating func takeHeldInput() -> HeldInput {
        var audio = HeldAudio(capacity: heldAudio.capacity)
        swap(&audio, &heldAudio)
        let digits = heldDigits
        heldDigits = []
        return HeldInput(audio: audio, digits: digits)
    }
}

/// Caller input held while a call's route was claimed.
package struct HeldInput {
    package private(set) var audio: HeldAudio
    package private(set) var digits: [UInt8]

    package var isEmpty: Bool { audio.isEmpty && digits.isEmpty }

    /// Each audio frame in the order it came, then the digits in theirs.
    package mutating func release(audio send: (UnsafeRawBufferPointer) -> Void, digits dial: (UInt8) -> Void) {
        audio.drain(send)
        for digit in digits { dial(digit) }
        digits = []
    }
}
