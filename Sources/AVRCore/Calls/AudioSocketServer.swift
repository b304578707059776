import AVRProtocol

/// The AudioSocket listener on `PORT`: one `CallSession` per connection from Asterisk. The
/// WebSocket media connections the HTTP port upgrades on `/media` are adopted here too
/// (`adopt`), so both kinds of call share the budget, the drain and the shutdown below.
///
/// A connection is not a call until it sends its UUID, which Asterisk does first thing.
/// Until then it is held to a budget (`AwaitingUUIDQueue`): closed if the UUID has not come
/// within `AUDIOSOCKET_UUID_TIMEOUT`, the oldest closed when `AUDIOSOCKET_MAX_UNIDENTIFIED`
/// are already waiting, and the oldest closed first when accepting runs out of file
/// descriptors (`shedUnidentified`). One timer per loop sweeps the deadlines; the closures
/// are counted (`avr_audiosocket_unidentified_closed_total`) and summed up in at most one
/// log line a second.
final class AudioSocketServer {
    private let listener: TCPListener
    private let context: CallContext
    private var sessions: [UInt64: CallSession] = [:]
    private var nextID: UInt64 = 0
    private let lifecycle: ServerLifecycle
    private var accepting = true
    private var isClosed = false
    private var waiting: AwaitingUUIDQueue
    private var closures = AwaitingUUIDQueue.CloseSummary()
    /// For the summary line: where the last closed connection came from, and the last
    /// accept error that made us shed connections.
    private var lastClosedPeer: String?
    private var lastPressure: UVError?
    private var sweep: Timer?
    /// When the armed sweep fires (loop milliseconds), nil when it is not armed.
    private var sweepAt: UInt64?
    private var lastSweep: UInt64 = 0
    /// Sweeps coalesce: at most one per this many ms (a connection is closed at most this
    /// long after its deadline).
    private static let sweepInterval: UInt64 = 50
    /// Connections shed per call of `shedUnidentified`.
    private static let shedBatch = 16
    /// Accepting ran out of file descriptors (on this listener). The service sets it to
    /// free what every server on the loop can spare; unset, this server sheds its own.
    var onAcceptPressure: ((UVError) -> Bool)?

    init(host: String, port: Int, context: CallContext, reusePort: Bool, lifecycle: ServerLifecycle) throws(UVError) {
        self.context = context
        self.lifecycle = lifecycle
        waiting = AwaitingUUIDQueue(timeout: UInt64(context.configuration.audioSocketUUIDTimeoutMilliseconds),
                                    capacity: context.configuration.audioSocketMaxUnidentified)
        listener = try TCPListener(loop: context.loop, host: host, port: port, reusePort: reusePort)
        listener.onConnection = { [unowned self] stream in self.accept(stream) }
        listener.onAcceptError = { [log = context.log] error in log.warn("AudioSocket accept failed: \(error)") }
        listener.onAcceptResumed = { [log = context.log] milliseconds, attempts in
            log.info("AudioSocket accepting again after \(milliseconds) ms (\(attempts) failed attempt(s))")
        }
        listener.onAcceptPressure = { [unowned self] error in
            if let relieve = self.onAcceptPressure { return relieve(error) }
            return self.shedUnidentified(error)
        }
    }

    var port: Int { listener.port }

    private func accept(_ stream: TCPStream) {
        admit(AudioSocketLeg(stream: stream, scratch: context.scratch))
    }

    /// A WebSocket media connection the HTTP server handed over (`/media`, already answered
    /// with 101): a call like an AudioSocket one, under the same budget until its MEDIA_START
    /// names it. False (and nothing adopted) while draining: new calls are refused.
    func adopt(_ leg: CallerLeg) -> Bool {
        guard accepting else { return false }
        admit(leg)
        return true
    }

    private func admit(_ leg: CallerLeg) {
        let session = CallSession(context: context, leg: leg)
        nextID += 1
        let id = nextID
        sessions[id] = session
        lifecycle.callOpened()
        session.onIdentified = { [unowned self] in self.waiting.remove(id) }
        session.onClosed = { [unowned self] in
            self.sessions[id] = nil
            self.waiting.remove(id)
            self.lifecycle.callClosed()
        }
        let now = context.loop.milliseconds
        if let oldest = waiting.admit(id, now: now) { closeUnidentified(oldest, .waitingLimit) }
        session.start()
        armSweep(now: now)
    }

    /// False once draining or stopped: new calls are refused.
    var isAccepting: Bool { accepting }

    /// Calls (AudioSocket connections) alive on this loop.
    var liveCalls: Int { sessions.count }

    /// Connections on this loop that have not sent their UUID yet.
    var unidentifiedConnections: Int { waiting.count }

    /// File descriptors ran out: closes up to a batch of the oldest connections that have not
    /// sent their UUID (none younger than the queue's grace: its UUID may be unread yet).
    /// Returns whether it closed any (their fds are free when it returns).
    func shedUnidentified(_ error: UVError) -> Bool {
        let now = context.loop.milliseconds
        let shed = waiting.shed(atMost: Self.shedBatch, now: now)
        guard !shed.isEmpty else { return false }
        lastPressure = error
        for id in shed { closeUnidentified(id, .fdPressure) }
        armSweep(now: now)
        return true
    }

    private func closeUnidentified(_ id: UInt64, _ reason: AwaitingUUIDQueue.CloseReason) {
        guard let session = sessions[id] else { return }
        lastClosedPeer = session.peerAddress?.description
        context.metrics.server.unidentifiedClosed(reason)
        closures.record(reason)
        session.end(.unidentified(reason))
    }

    // MARK: The sweep

    /// Arms the sweep for the next deadline or the next summary line, whichever comes first.
    private func armSweep(now: UInt64) {
        guard !isClosed else { return }
        let deadline = waiting.nextDeadline()
        let summary = closures.dueAt
        guard var target = [deadline, summary].compactMap({ $0 }).min() else { return }
        target = max(target, lastSweep + Self.sweepInterval)
        if let armed = sweepAt, armed <= target { return }
        if sweep == nil {
            guard let timer = try? Timer(loop: context.loop) else { return }
            timer.unref()
            sweep = timer
        }
        sweepAt = target
        sweep?.start(timeout: target > now ? target - now : 0) { [unowned self] in self.sweepNow() }
    }

    private func sweepNow() {
        sweepAt = nil
        let now = context.loop.milliseconds
        lastSweep = now
        for id in waiting.expire(now: now) { closeUnidentified(id, .uuidTimeout) }
        logClosures(now: now)
        armSweep(now: now)
    }

    /// One line for every closure since the last one (at most one line per second).
    private func logClosures(now: UInt64) {
        guard let counts = closures.take(now: now) else { return }
        let total = counts.reduce(0) { $0 + $1.1 }
        let configuration = context.configuration
        let parts = counts.map { reason, count in
            switch reason {
            case .uuidTimeout:
                "\(count) past AUDIOSOCKET_UUID_TIMEOUT (\(configuration.audioSocketUUIDTimeoutMilliseconds) ms)"
            case .waitingLimit:
                "\(count) beyond AUDIOSOCKET_MAX_UNIDENTIFIED (\(configuration.audioSocketMaxUnidentified) waiting)"
            case .fdPressure:
                "\(count) to free file descriptors (accept failed: \(lastPressure?.description ?? "out of file descriptors"))"
            }
        }
        context.log.info("Closed \(total) AudioSocket connection(s) that sent no UUID: \(parts.joined(separator: ", "))"
            + "; last from \(lastClosedPeer ?? "?")")
    }

    /// Drain: the listening socket closes (new connections are refused), calls go on.
    func stopAccepting() {
        guard accepting else { return }
        accepting = false
        listener.close()
    }

    /// Stops accepting and ends every call (each sends `call_ended`).
    func close() {
        stopAccepting()
        isClosed = true
        sweep?.close()
        sweep = nil
        sweepAt = nil
        for session in sessions.values { session.end(.shutdown) }
        context.scheduler.close()
    }
}
