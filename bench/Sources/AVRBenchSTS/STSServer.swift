import AVRBenchSupport
import AVRCore
import AVRProtocol

/// The harness's STS service: a WebSocket server speaking avr-core's STS protocol.
///
/// - `echo`: every `{"type":"audio",...}` message is sent straight back as it came (the
///   unmasked JSON is already `{"type":"audio","audio":"..."}`: no decode, no re-encode);
/// - `steady`: a 20 ms reply frame per connection from one timer, whatever comes in;
/// - `interrupt`: echo, plus `{"type":"interruption"}` and an agent transcript every
///   `interruptEverySeconds` on each connection.
final class STSServer {
    enum Mode: String { case echo, steady, interrupt }

    struct Stats {
        var connections = 0
        var open = 0
        var audioIn = 0
        var audioOut = 0
        var interruptions = 0
        var transcripts = 0
        var inits = 0
        var dtmf = 0
        var protocolErrors = 0
    }

    let loop: EventLoop
    let mode: Mode
    let interruptEveryNanoseconds: UInt64
    private let listener: TCPListener
    private let timer: Timer
    private(set) var stats = Stats()
    private var connections: [ObjectIdentifier: STSConnection] = [:]
    /// One scratch output buffer for every frame this process writes.
    var scratch: [UInt8] = []
    let steadyFrame: [UInt8]
    let interruptionFrame: [UInt8]
    let transcriptFrame: [UInt8]

    init(loop: EventLoop, port: Int, mode: Mode, interruptEverySeconds: Double) throws {
        self.loop = loop
        self.mode = mode
        interruptEveryNanoseconds = UInt64(interruptEverySeconds * 1e9)
        listener = try TCPListener(loop: loop, host: "127.0.0.1", port: port)
        timer = try Timer(loop: loop)
        var pcm = [UInt8](repeating: 0, count: 320)
        for index in 0..<160 {
            // 600 Hz, no stamp: the caller counts these as "unstamped".
            let sample = Int16(truncatingIfNeeded: (index % 40 < 20 ? 3000 : -3000))
            pcm[2 * index] = UInt8(truncatingIfNeeded: sample)
            pcm[2 * index + 1] = UInt8(truncatingIfNeeded: sample >> 8)
        }
        func frame(_ text: String) -> [UInt8] {
            var output: [UInt8] = []
            Array(text.utf8).withUnsafeBytes { ServerWebSocket.appendFrame(opcode: 1, payload: $0, to: &output) }
            return output
        }
        steadyFrame = frame(#"{"type":"audio","audio":""# + Base64.encodeToString(pcm) + #""}"#)
        interruptionFrame = frame(#"{"type":"interruption"}"#)
        transcriptFrame = frame(#"{"type":"transcript","role":"agent","text":"bench transcript"}"#)
        listener.onConnection = { [self] stream in
            let connection = STSConnection(server: self, stream: stream)
            connections[ObjectIdentifier(connection)] = connection
            stats.connections += 1
            stats.open += 1
            connection.start()
        }
        if mode != .echo {
            timer.start(timeout: 20, repeat: 20) { [self] in tick() }
        }
    }

    var port: Int { listener.port }

    func closed(_ connection: STSConnection) {
        if connections.removeValue(forKey: ObjectIdentifier(connection)) != nil { stats.open -= 1 }
    }

    func count(_ update: (inout Stats) -> Void) { update(&stats) }

    private func tick() {
        let now = loop.nanoseconds
        for connection in connections.values where connection.isOpen {
            switch mode {
            case .steady:
                connection.write(steadyFrame)
                stats.audioOut += 1
            case .interrupt:
                if now >= connection.nextInterrupt {
                    connection.nextInterrupt = now + interruptEveryNanoseconds
                    connection.write(interruptionFrame)
                    connection.write(transcriptFrame)
                    stats.interruptions += 1
                    stats.transcripts += 1
                }
            case .echo:
                break
            }
        }
    }

    func close() {
        timer.close()
        listener.close()
        for connection in connections.values { connection.close() }
    }
}

/// One STS WebSocket connection: handshake, then frames.
final class STSConnection {
    unowned let server: STSServer
    let stream: TCPStream
    private var handshake = HTTPMessageReader()
    private var frames = ByteQueue()
    private(set) var isOpen = false
    var nextInterrupt: UInt64 = 0

    init(server: STSServer, stream: TCPStream) {
        self.server = server
        self.stream = stream
    }

    func start() {
        stream.onRead = { [self] bytes in received(bytes) }
        stream.onEnd = { [self] _ in close() }
        stream.onClose = { [self] in server.closed(self) }
        stream.startReading()
    }

    func write(_ bytes: [UInt8]) { stream.write(bytes) }

    func close() { stream.close() }

    private func received(_ bytes: UnsafeRawBufferPointer) {
        if !isOpen {
            handshake.append(bytes)
            guard let request = try? handshake.next() else { return }
            guard let key = request.headers["sec-websocket-key"] else {
                stream.write(Array("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n".utf8))
                stream.closeAfterFlush()
                return
            }
            stream.write(ServerWebSocket.handshakeResponse(key: key))
            isOpen = true
            nextInterrupt = server.loop.nanoseconds + server.interruptEveryNanoseconds
            return  // avr-core sends nothing before it reads the 101
        }
        frames.append(bytes)
        do {
            while try ServerWebSocket.nextFrame(&frames, { fin, opcode, payload in handle(opcode: opcode, payload: payload) }) {}
        } catch {
            server.count { $0.protocolErrors += 1 }
            close()
        }
    }

    private static let audioPrefix = Array(#"{"type":"audio""#.utf8)
    private static let initPrefix = Array(#"{"type":"init""#.utf8)

    private func handle(opcode: UInt8, payload: UnsafeMutableRawBufferPointer) {
        switch opcode {
        case 1:
            if payload.starts(with: Self.audioPrefix) {
                server.count { $0.audioIn += 1 }
                if server.mode != .steady {
                    server.scratch.removeAll(keepingCapacity: true)
                    ServerWebSocket.appendFrame(opcode: 1, payload: UnsafeRawBufferPointer(payload), to: &server.scratch)
                    server.scratch.withUnsafeBytes { stream.write($0) }
                    server.count { $0.audioOut += 1 }
                }
            } else if payload.starts(with: Self.initPrefix) {
                server.count { $0.inits += 1 }
            } else {
                server.count { $0.dtmf += 1 }
            }
        case 8:
            server.scratch.removeAll(keepingCapacity: true)
            ServerWebSocket.appendFrame(opcode: 8, payload: UnsafeRawBufferPointer(rebasing: payload.prefix(2)), to: &server.scratch)
            server.scratch.withUnsafeBytes { stream.write($0) }
            stream.closeAfterFlush()
        case 9:
            server.scratch.removeAll(keepingCapacity: true)
            ServerWebSocket.appendFrame(opcode: 10, payload: UnsafeRawBufferPointer(payload), to: &server.scratch)
            server.scratch.withUnsafeBytes { stream.write($0) }
        default:
            break
        }
    }
}
