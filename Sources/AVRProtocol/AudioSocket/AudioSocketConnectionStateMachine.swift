/// The life of one AudioSocket connection, as events in and actions out, with no I/O: the
/// connection handler feeds it what happened and does what it says.
///
/// `awaitingUUID` → (`0x01`) → `active` → (hangup, error, violation, close) → `closed`.
/// Exactly one `.hangup` is ever returned, whatever happens after it (a socket close that
/// follows our own hangup, late frames already in the read buffer): the caller can end the
/// call, send `call_ended` and release resources on that action without any bookkeeping.
package struct AudioSocketConnectionStateMachine: Sendable {
    package enum State: Equatable, Sendable {
        /// Connected; the UUID message must come first.
        case awaitingUUID
        /// The call is running.
        case active(CallUUID)
        /// The call is over; everything else is ignored.
        case closed
    }

    /// Why the call ended.
    package enum HangupReason: Equatable, Sendable {
        /// Asterisk sent `0x00`.
        case peerHangup
        /// Asterisk sent `0xff`, with its (possibly empty) application error code.
        case peerError(code: [UInt8])
        /// The peer broke the protocol.
        case protocolViolation(ProtocolViolation)
        /// The socket closed or reset (how Asterisk usually reports a caller hanging up).
        case peerClosed
        /// Our side ended the call (the STS service closed, shutdown…).
        case local
    }

    package enum ProtocolViolation: Equatable, Sendable {
        /// Audio or DTMF arrived before the UUID.
        case frameBeforeUUID(AudioSocketKind)
        /// A second UUID message.
        case duplicateUUID
        /// Bytes that are not AudioSocket at all.
        case malformed(AudioSocketError)
    }

    package enum Action: Equatable, Sendable {
        /// The UUID arrived: look up the call's metadata, connect the STS, `call_started`.
        case startCall(CallUUID)
        /// Caller audio to decode and forward; the payload is in the read buffer.
        case forwardAudio(AudioSocketAudio)
        /// A DTMF key to forward (`dtmf_digit`).
        case forwardDTMF(DTMFDigit)
        /// A DTMF message whose byte is no key: log it; the call goes on.
        case ignoreInvalidDTMF(UInt8)
        /// End the call: unless the reason is `.peerClosed`, send `0x00`; close the socket.
        case hangup(HangupReason)
        /// Nothing to do.
        case ignore
    }

    package private(set) var state: State = .awaitingUUID

    package init() {}

    /// A message was decoded.
    package mutating func receivedFrame(_ frame: AudioSocketFrame) -> Action {
        switch (state, frame) {
        case (.closed, _):
            return .ignore
        case (_, .hangup):
            return close(.peerHangup)
        case (_, .error(let code)):
            return close(.peerError(code: code))
        case (.awaitingUUID, .uuid(let uuid)):
            state = .active(uuid)
            return .startCall(uuid)
        case (.active, .uuid):
            return close(.protocolViolation(.duplicateUUID))
        case (.awaitingUUID, .audio(let audio)):
            return close(.protocolViolation(.frameBeforeUUID(audio.kind)))
        case (.awaitingUUID, .dtmf), (.awaitingUUID, .invalidDTMF):
            return close(.protocolViolation(.frameBeforeUUID(.dtmf)))
        case (.active, .audio(let audio)):
            return .forwardAudio(audio)
        case (.active, .dtmf(let digit)):
            return .forwardDTMF(digit)
        case (.active, .invalidDTMF(let byte)):
            return .ignoreInvalidDTMF(byte)
        }
    }

    /// The decoder rejected the bytes.
    package mutating func receivedMalformedBytes(_ error: AudioSocketError) -> Action {
        guard state != .closed else { return .ignore }
        return close(.protocolViolation(.malformed(error)))
    }

    /// The socket reached end of file or failed.
    package mutating func socketClosed() -> Action {
        guard state != .closed else { return .ignore }
        return close(.peerClosed)
    }

    /// Our side wants the call over.
    package mutating func hangupRequested() -> Action {
        guard state != .closed else { return .ignore }
        return close(.local)
    }

    private mutating func close(_ reason: HangupReason) -> Action {
        state = .closed
        return .hangup(reason)
    }
}

extension AudioSocketConnectionStateMachine.ProtocolViolation: CustomStringConvertible {
    package var description: String {
        switch self {
        case .frameBeforeUUID(let kind): "message kind 0x\(String(kind.rawValue, radix: 16, uppercase: true)) before the UUID"
        case .duplicateUUID: "a second UUID message"
        case .malformed(let error): "\(error)"
        }
    }
}
