/// The state of a `TLSStream`, without I/O: where the handshake is and whether the stream is
/// open, failed or closing, as one value, so a failed write before the handshake or a
/// closing stream that forgot its session cannot be written down.
///
///     open(.handshaking) --handshake done--> open(.established(resumed:))
///     open(.established(r)) --write fails--> writeFailed(resumed: r) --next loop turn--> closing
///     any --close / closeAfterFlush--> closing(session)
extension TLSStream {
    /// What the handshake has given.
    enum Session: Equatable {
        case handshaking
        /// Done; `resumed`: a saved session was resumed.
        case established(resumed: Bool)
    }

    enum State: Equatable {
        /// Open: records are read (and, once established, plaintext is written).
        case open(Session)
        /// Established, and a write failed: later writes are ignored; the failure is reported
        /// (and the stream closed) on a later loop turn.
        case writeFailed(resumed: Bool)
        /// `close` or `closeAfterFlush` was called (or a failure closed it): nothing more is
        /// read or written; `Session` still says how the handshake went.
        case closing(Session)

        var session: Session {
            switch self {
            case .open(let session), .closing(let session): session
            case .writeFailed(let resumed): .established(resumed: resumed)
            }
        }

        var isEstablished: Bool { session != .handshaking }
        var isClosing: Bool { if case .closing = self { true } else { false } }
        /// Plaintext may be written: established, open, no write failed.
        var acceptsWrites: Bool { if case .open(.established) = self { true } else { false } }

        /// The handshake completed (ignored unless open and handshaking).
        mutating func established(resumed: Bool) {
            if self == .open(.handshaking) { self = .open(.established(resumed: resumed)) }
        }

        /// A write failed. Returns whether it is the first (its failure is then reported).
        @discardableResult
        mutating func writeFailed() -> Bool {
            guard case .open(.established(let resumed)) = self else { return false }
            self = .writeFailed(resumed: resumed)
            return true
        }

        /// Returns whether the stream was not closing already.
        @discardableResult
        mutating func close() -> Bool {
            guard !isClosing else { return false }
            self = .closing(session)
            return true
        }
    }
}
