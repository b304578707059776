import AVRProtocol

/// The life of a call's STS WebSocket connection as events in and actions out, without I/O.
/// `STSWebSocketClient` turns socket, timer and caller callbacks into these events and carries
/// out the actions; the bytes themselves (handshake answer, frames) are decoded by the pure
/// parsers in the client, and only their outcome comes here. Each state holds what it needs:
/// the caller audio held until the connection opens lives in the states before `open`.
///
/// idle → connecting → handshaking → open → (closing →) closed
///
/// While open, the machine also keeps the connection's liveness (`WebSocketLiveness`: a ping
/// every interval, any frame within the timeout after it) and counts the service's pings
/// (`WebSocketPingFloodGuard`); the shell passes the loop's time in with the events that need it.
struct STSWebSocketStateMachine {
    enum State {
        case idle
        /// Resolve, TCP connect and TLS, under one deadline; caller audio is held.
        case connecting(held: HeldAudio)
        /// The upgrade request is out; its answer is awaited (the handshake timer runs).
        case handshaking(held: HeldAudio)
        case open
        /// Our close frame is out (the caller hung up); the service's close frame or its end
        /// of the connection is awaited, at most the close timeout.
        case closing
        case closed
        /// Only while a state's payload changes in place, so the held audio is not copied.
        case modifying
    }

    enum Action {
        case none
        /// Resolve, connect (and TLS) within the connect timeout.
        case connect
        /// Write the upgrade request and arm the handshake timer.
        case sendHandshake
        /// Send the `init` message, then the held audio in order; report open. The timer
        /// (the handshake's) is re-armed for `wakeIn` ms (the first ping), or stopped when nil.
        case open(held: HeldAudio, wakeIn: UInt64?)
        /// Send this caller frame now.
        case sendAudio
        /// Send the digit (only while open; DTMF is not held).
        case sendDTMF
        /// Hand the text message on.
        case deliver
        /// Answer the ping (the latest one only, if an earlier pong is still unsent).
        case sendPong
        /// Send a ping and re-arm the timer for `wakeIn` ms.
        case sendPing(wakeIn: UInt64)
        /// Re-arm the timer for this many ms.
        case sleep(UInt64)
        /// A binary message: logged and ignored.
        case ignoreBinary
        /// The service closed the WebSocket: answer with its code, close once flushed, report
        /// a finished conversation.
        case answerClose(code: WebSocketCloseCode?)
        /// Send our close frame (1000) and arm the close timer.
        case startClosing
        /// Close the connection (after flushing when `politely`) and report `reason`; nil
        /// when nobody is listening any more (the caller hung up).
        case finish(reason: SpeechCloseReason?, politely: Bool)
        /// Send a close frame with the error's code, close, and report the failure.
        case failProtocol(WebSocketError)
        /// The service abused the protocol (a ping flood): send a close frame with 1008
        /// (policy violation), close now, and report the failure.
        case failPolicy(SpeechFailure)
    }

    let url: EndpointURL
    let connectTimeout: UInt64
    let preOpenCapacity: Int
    let livenessSettings: WebSocketLiveness.Settings
    private(set) var state = State.idle
    /// Set when the connection opens.
    private var liveness: WebSocketLiveness?
    private var pings = WebSocketPingFloodGuard()

    init(url: EndpointURL, connectTimeout: UInt64, preOpenCapacity: Int, liveness: WebSocketLiveness.Settings = .off) {
        self.url = url
        self.connectTimeout = connectTimeout
        self.preOpenCapacity = preOpenCapacity
        livenessSettings = liveness
    }

    mutating func start(tlsAvailable: Bool) -> Action {
        guard case .idle = state else { return .none }
        if url.scheme.usesTLS && !tlsAvailable { return fail(.tlsUnavailable(url)) }
        state = .connecting(held: HeldAudio(capacity: preOpenCapacity))
        return .connect
    }

    /// The connection (and TLS) is up.
    mutating func connected() -> Action {
        guard case .connecting(let held) = state else { return .none }
        state = .handshaking(held: held)
        return .sendHandshake
    }

    mutating func connectFailed(_ failure: Connector.Failure) -> Action {
        guard case .connecting = state else { return .none }
        return fail(.unreachable(url, failure))
    }

    mutating func handshakeAnswered(now: UInt64 = 0) -> Action {
        guard case .handshaking(let held) = state else { return .none }
        state = .open
        let liveness = WebSocketLiveness(settings: livenessSettings, openedAt: now)
        self.liveness = liveness
        return .open(held: held, wakeIn: liveness.firstWake)
    }

    mutating func handshakeRejected(_ error: WebSocketHandshakeError) -> Action {
        guard case .handshaking = state else { return .none }
        return fail(.handshakeRejected(url, error))
    }

    /// The one timer fired: the handshake or the close wait is over, or (open) a ping is due
    /// or its answer overdue.
    mutating func timerFired(now: UInt64 = 0) -> Action {
        switch state {
        case .handshaking: return fail(.handshakeTimeout(url, milliseconds: connectTimeout))
        case .open:
            guard var liveness, liveness.settings.isOn else { return .none }
            let step = liveness.wake(now: now)
            self.liveness = liveness
            switch step {
            case .sendPing(let wakeIn): return .sendPing(wakeIn: wakeIn)
            case .sleep(let delay): return .sleep(delay)
            case .noAnswer(let milliseconds): return fail(.noPingAnswer(milliseconds: milliseconds))
            }
        case .closing:
            state = .closed
            return .finish(reason: nil, politely: false)
        default: return .none
        }
    }

    mutating func callerAudio(_ pcm: UnsafeRawBufferPointer) -> Action {
        switch state {
        case .open: return .sendAudio
        case .connecting(var held):
            state = .modifying
            held.append(pcm)
            state = .connecting(held: held)
        case .handshaking(var held):
            state = .modifying
            held.append(pcm)
            state = .handshaking(held: held)
        case .idle, .closing, .closed, .modifying: break
        }
        return .none
    }

    mutating func dtmf() -> Action {
        if case .open = state { return .sendDTMF }
        return .none
    }

    /// A frame was read while open (call once per read, before its messages): the service
    /// is alive. Cheap enough for every read: one stored flag.
    mutating func heardFromService() {
        liveness?.heardFromPeer()
    }

    /// A complete message from the service; `now` is only read for pings.
    mutating func received(_ event: WebSocketEvent, now: @autoclosure () -> UInt64 = 0) -> Action {
        switch (state, event) {
        case (.open, .text), (.closing, .text): return .deliver
        case (.open, .binary), (.closing, .binary): return .ignoreBinary
        case (.open, .ping):
            guard pings.admit(now: now()) else {
                state = .closed
                return .failPolicy(.pingFlood(maxPerSecond: pings.maxPerSecond))
            }
            return .sendPong
        case (.closing, .close):
            // The answer to our close frame: the closing handshake is complete.
            state = .closed
            return .finish(reason: nil, politely: true)
        case (.open, .close(let code, _)):
            state = .closed
            return .answerClose(code: code)
        default: return .none
        }
    }

    mutating func protocolViolated(_ error: WebSocketError) -> Action {
        switch state {
        case .open, .closing:
            state = .closed
            return .failProtocol(error)
        default: return .none
        }
    }

    /// The service ended the connection (`failure` nil: cleanly, without a close frame).
    mutating func peerEnded(_ failure: StreamFailure?) -> Action {
        switch state {
        case .closing:
            state = .closed
            return .finish(reason: nil, politely: false)
        case .open where failure == nil:
            // Not the end of the conversation the service chose (that is a close frame): the
            // call plays out what it has, or a failover backend replaces the connection.
            state = .closed
            return .finish(reason: .endedWithoutCloseFrame, politely: false)
        case .handshaking, .open:
            return fail(failure.map { .connectionFailed($0) } ?? .closedWithoutCloseFrame)
        default: return .none
        }
    }

    /// The caller hung up. Open: a close frame, then the wait. Before open there is no
    /// WebSocket to close: the connection just closes.
    mutating func hangup() -> Action {
        switch state {
        case .open:
            state = .closing
            return .startClosing
        case .idle, .connecting, .handshaking:
            state = .closed
            return .finish(reason: nil, politely: true)
        case .closing, .closed, .modifying:
            return .none
        }
    }

    private mutating func fail(_ failure: SpeechFailure) -> Action {
        state = .closed
        return .finish(reason: .failed(failure), politely: false)
    }
}
