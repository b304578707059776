/// The states of a `TCPStream`, without I/O: each transition is one event and returns what
/// the stream must do; `TCPStream` makes the libuv calls. Two independent parts: what the
/// write side (and the connection's life) is doing, and whether the owner reads.
extension TCPStream {
    /// The write side and the connection's life, one state at a time.
    ///
    ///     idle --write not all taken--> writing(then: .drain) --flushed--> idle (onDrain)
    ///     idle/writing --write fails--> failed --next loop turn--> closed (onEnd)
    ///     writing(then: .drain) --shutdown--> writing(then: .shutDown) --flushed--> halfClosed
    ///     idle/failed --shutdown--> halfClosed (uv_shutdown now)
    ///     writing(then: .drain/.shutDown) --closeAfterFlush--> writing(then: .close) --flushed--> closed
    ///     idle/failed/halfClosed --closeAfterFlush--> closed
    ///     any --close--> closed
    enum WriteState: Equatable {
        /// Open, nothing in flight: a write goes to the kernel first (`uv_try_write`).
        case idle
        /// One `uv_write` in flight (more bytes may be queued behind it); `then` is what
        /// follows once the last queued byte is written.
        case writing(then: AfterFlush)
        /// A write failed: later writes are ignored, the failure is reported (and the stream
        /// closed) on a later loop turn.
        case failed
        /// The FIN is issued (`uv_shutdown`): later writes are ignored; reading goes on.
        case halfClosed
        /// `uv_close` is issued: nothing more happens but the close callback.
        case closed

        /// What a flushed write queue leads to.
        enum AfterFlush: Equatable {
            /// Back to idle; the owner hears `onDrain`.
            case drain
            /// `shutdown` was asked meanwhile: the FIN goes out now. No write is accepted.
            case shutDown
            /// `closeAfterFlush` was asked meanwhile: close now. Writes are still accepted
            /// (and flushed) until then.
            case close
        }

        /// Whether `write` takes bytes now.
        var acceptsWrites: Bool {
            switch self {
            case .idle, .writing(then: .drain), .writing(then: .close): true
            case .writing(then: .shutDown), .failed, .halfClosed, .closed: false
            }
        }

        var isWriting: Bool {
            if case .writing = self { true } else { false }
        }

        /// Bytes are queued and a `uv_write` issued: idle → writing. Already writing: no change.
        mutating func writeStarted() {
            if self == .idle { self = .writing(then: .drain) }
        }

        /// A write failed before libuv took it (`uv_try_write`, `uv_write`). Returns whether
        /// the failure is new (it is reported once, on a later loop turn).
        mutating func writeFailed() -> Bool {
            switch self {
            case .idle, .writing: self = .failed; return true
            case .failed, .halfClosed, .closed: return false
            }
        }

        /// The in-flight write completed and nothing is queued behind it: what to do now.
        /// Nothing (nil) unless a write was in flight on an open stream.
        mutating func flushed() -> AfterFlush? {
            guard case .writing(let then) = self else { return nil }
            switch then {
            case .drain: self = .idle
            case .shutDown: self = .halfClosed
            case .close: break  // `close` moves on to closed
            }
            return then
        }

        /// What `shutdown` leads to.
        enum ShutdownStep: Equatable {
            /// Issue `uv_shutdown` now.
            case now
            /// After the queued bytes (`flushed` says when).
            case afterFlush
            /// Already shut (or closing, or closed): the request is dropped.
            case ignored
        }

        mutating func shutdown() -> ShutdownStep {
            switch self {
            case .idle, .failed:
                self = .halfClosed
                return .now
            case .writing(then: .drain):
                self = .writing(then: .shutDown)
                return .afterFlush
            case .writing(then: .shutDown), .writing(then: .close), .halfClosed, .closed:
                return .ignored
            }
        }

        /// What `closeAfterFlush` leads to.
        enum CloseStep: Equatable {
            /// Nothing to wait for: close now.
            case now
            /// Close when flushed; arm the deadline.
            case afterFlush
            /// Already waiting, or closed.
            case ignored
        }

        mutating func closeAfterFlush() -> CloseStep {
            switch self {
            case .writing(then: .drain), .writing(then: .shutDown):
                self = .writing(then: .close)
                return .afterFlush
            case .writing(then: .close), .closed:
                return .ignored
            case .idle, .failed, .halfClosed:
                return .now
            }
        }

        /// `close`: returns whether the handle is to be closed now (false: already closed).
        mutating func close() -> Bool {
            guard self != .closed else { return false }
            self = .closed
            return true
        }
    }

    /// The read side: the owner's wish to read, and whether reading is paused until the next
    /// loop turn after a read that filled the whole buffer (`yieldRead`).
    enum ReadState: Equatable {
        /// Not reading (`uv_read_stop`, or never started).
        case stopped
        /// `uv_read_start` is in force.
        case reading
        /// Paused until the next loop turn; `resume`: whether the owner still wants to read
        /// then (a `stopReading` meanwhile clears it, a `startReading` sets it again).
        case yielded(resume: Bool)

        /// `startReading`: returns whether to call `uv_read_start` now.
        mutating func start() -> Bool {
            switch self {
            case .stopped: self = .reading; return true
            case .yielded: self = .yielded(resume: true); return false  // the resume starts it
            case .reading: return false
            }
        }

        /// `stopReading`: returns whether to call `uv_read_stop` now.
        mutating func stop() -> Bool {
            switch self {
            case .reading: self = .stopped; return true
            case .yielded: self = .yielded(resume: false); return false
            case .stopped: return false
            }
        }

        /// A read filled the buffer: returns whether to pause now (and resume next turn).
        mutating func yield() -> Bool {
            guard self == .reading else { return false }
            self = .yielded(resume: true)
            return true
        }

        /// The next loop turn after a yield: returns whether to call `uv_read_start` again.
        mutating func resume() -> Bool {
            guard case .yielded(let resume) = self else { return false }
            self = resume ? .reading : .stopped
            return resume
        }

        /// `uv_read_start` failed.
        mutating func startFailed() {
            self = .stopped
        }
    }
}
