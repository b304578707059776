import AVRProtocol

/// The AudioSocket listener on `PORT`: one `CallSession` per connection from Asterisk.
final class AudioSocketServer {
    private let listener: TCPListener
    private let context: CallContext
    private var sessions: [ObjectIdentifier: CallSession] = [:]

    init(host: String, port: Int, context: CallContext, reusePort: Bool) throws(UVError) {
        self.context = context
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
        session.onClosed = { [unowned self] in self.sessions[id] = nil }
        session.start()
    }

    /// Stops accepting and ends every call (each sends `call_ended`).
    func close() {
        listener.close()
        for session in sessions.values { session.end(.shutdown) }
        context.scheduler.close()
    }
}
