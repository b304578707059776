import AVRProtocol

/// The AudioSocket listener on `PORT`: one `CallSession` per connection from Asterisk.
final class AudioSocketServer {
    private let listener: TCPListener
    private let context: CallContext
    private var sessions: [ObjectIdentifier: CallSession] = [:]
    private let lifecycle: ServerLifecycle
    private var accepting = true

    init(host: String, port: Int, context: CallContext, reusePort: Bool, lifecycle: ServerLifecycle) throws(UVError) {
        self.context = context
        self.lifecycle = lifecycle
        listener = try TCPListener(loop: context.loop, host: host, port: port, reusePort: reusePort)
        listener.onConnection = { [unowned self] stream in self.accept(stream) }
        listener.onAcceptError = { [log = context.log] error in log.warn("AudioSocket accept failed: \(error)") }
        listener.onAcceptResumed = { [log = context.log] milliseconds, attempts in
            log.info("AudioSocket accepting again after \(milliseconds) ms (\(attempts) failed attempt(s))")
        }
    }

    var port: Int { listener.port }

    private func accept(_ stream: TCPStream) {
        let session = CallSession(context: context, stream: stream)
        let id = ObjectIdentifier(session)
        sessions[id] = session
        lifecycle.callOpened()
        session.onClosed = { [unowned self] in
            self.sessions[id] = nil
            self.lifecycle.callClosed()
        }
        session.start()
    }

    /// Calls (AudioSocket connections) alive on this loop.
    var liveCalls: Int { sessions.count }

    /// Drain: the listening socket closes (new connections are refused), calls go on.
    func stopAccepting() {
        guard accepting else { return }
        accepting = false
        listener.close()
    }

    /// Stops accepting and ends every call (each sends `call_ended`).
    func close() {
        stopAccepting()
        for session in sessions.values { session.end(.shutdown) }
        context.scheduler.close()
    }
}
