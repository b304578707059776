/// The lifecycle of one WebSocket client connection (RFC 6455 §4, §7), without I/O: the
/// connection tells it what happened, it answers with what to do. Timers and sockets live in
/// the caller; this type only decides, so every path can be tested as a transcript.
///
///     connecting → handshaking → open → closing → closed
///
/// Whatever the path, the caller learns how it ended from `closeCode` once `closed`.
public struct WebSocketClientStateMachine: Sendable, Equatable {
    public enum State: Sendable, Equatable {
        /// TCP (and TLS) being established.
        case connecting
        /// Upgrade request sent, waiting for the 101 response.
        case handshaking
        /// Messages may flow both ways.
        case open
        /// A close frame went out; waiting for the peer's close or its TCP close.
        case closing
        case closed
    }

    public enum Action: Sendable, Equatable {
        case none
        case sendHandshakeRequest
        /// The connection is usable: flush what was queued while connecting.
        case deliverOpen
        /// Send a close frame; then close the socket too when `thenCloseConnection`, else
        /// wait for the peer's close (arm a timer and report `closeTimedOut`).
        case sendClose(WebSocketCloseCode, thenCloseConnection: Bool)
        case closeConnection
        /// The socket is gone; tell the owner with this code (1005/1006 as RFC 6455 §7.1.5
        /// defines when no code was received).
        case reportClosed(WebSocketCloseCode)
    }

    public private(set) var state: State = .connecting
    /// The code the connection ended with, known once a close was received, sent, or the
    /// socket dropped.
    public private(set) var closeCode: WebSocketCloseCode?

    public init() {}

    /// Whether data frames may be sent now.
    public var canSendMessages: Bool { state == .open }

    public mutating func connected() -> Action {
        guard state == .connecting else { return .none }
        state = .handshaking
        return .sendHandshakeRequest
    }

    public mutating func handshakeCompleted() -> Action {
        guard state == .handshaking else { return .none }
        state = .open
        return .deliverOpen
    }

    /// The response was refused or invalid, or connecting failed: no close frame is possible.
    public mutating func handshakeFailed() -> Action {
        switch state {
        case .connecting, .handshaking:
            state = .closing
            closeCode = .abnormalClosure
            return .closeConnection
        case .open, .closing, .closed:
            return .none
        }
    }

    /// The peer sent a close frame (`code` nil when it carried none).
    public mutating func receivedClose(code: WebSocketCloseCode?) -> Action {
        switch state {
        case .open:
            // Echo the close (RFC 6455 §5.5.1); the STS service ends the call, so do not wait
            // for the server to drop TCP first.
            state = .closing
            closeCode = code ?? .noStatusReceived
            return .sendClose(code ?? .normalClosure, thenCloseConnection: true)
        case .closing:
            // Our close was answered; the code we chose stays the reported one.
            return .closeConnection
        case .connecting, .handshaking, .closed:
            return .none
        }
    }

    /// We want to close (e.g. the caller hung up).
    public mutating func sendCloseRequested(code: WebSocketCloseCode = .normalClosure) -> Action {
        switch state {
        case .connecting, .handshaking:
            state = .closing
            closeCode = code
            return .closeConnection
        case .open:
            state = .closing
            closeCode = code
            return .sendClose(code, thenCloseConnection: false)
        case .closing, .closed:
            return .none
        }
    }

    /// The peer broke the protocol: fail the connection (RFC 6455 §7.1.7).
    public mutating func receivedFrameError(_ error: WebSocketError) -> Action {
        switch state {
        case .open:
            state = .closing
            closeCode = error.closeCode
            return .sendClose(error.closeCode, thenCloseConnection: true)
        case .connecting, .handshaking, .closing:
            state = .closing
            if closeCode == nil { closeCode = error.closeCode }
            return .closeConnection
        case .closed:
            return .none
        }
    }

    /// The peer did not answer our close in time.
    public mutating func closeTimedOut() -> Action {
        state == .closing ? .closeConnection : .none
    }

    /// The socket is closed (by either side, or reset).
    public mutating func connectionClosed() -> Action {
        guard state != .closed else { return .none }
        if closeCode == nil { closeCode = .abnormalClosure }
        state = .closed
        return .reportClosed(closeCode ?? .abnormalClosure)
    }
}
