import AVRProtocol

/// The AudioSocket listener on `PORT`: one `CallSession` per connection from Asterisk.
final class AudioSocketServer {
    private let listener: TCPListener
    private unowned let service: AVRService
    private var sessions: [ObjectIdentifier: TCPStream] = [:]

    init(loop: EventLoop, host: String, port: Int, service: AVRService) throws(UVError) {
        self.service = service
        listener = try TCPListener(loop: loop, host: host, port: port)
        listener.onConnection = { [unowned self] stream in self.accept(stream) }
        listener.onAcceptError = { [unowned service] error in service.log.warn("AudioSocket accept failed: \(error)") }
    }

    var port: Int { listener.port }

    private func accept(_ stream: TCPStream) {
        // The call path arrives with the call-path work; until then connections are refused.
        stream.close()
    }

    func close() {
        listener.close()
    }
}
