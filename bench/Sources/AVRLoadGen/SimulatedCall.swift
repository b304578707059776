import AVRBenchSupport
import AVRCore
import AVRProtocol
#if canImport(Glibc)
import Glibc
#endif

/// One simulated Asterisk caller: optional `POST /call` (connection kept open, idle, for the
/// whole call, as `CURL()` does), then the media connection — UUID, a frame every 20 ms when
/// the scheduler says so, optional DTMF — and a hangup. Everything that comes back is timed
/// on arrival.
///
/// The media connection is AudioSocket, or with `--ingress websocket` what Asterisk's
/// WebSocket channel does: a client upgrade to `/media?uuid=…`, `MEDIA_START` (text), each
/// 20 ms frame as one masked binary frame of the bare payload, `DTMF_END` (text), and a close
/// frame (1000) to hang up; the server's `HANGUP` command ends the call from its side.
///
/// On AudioSocket what comes back is 8 kHz slin (`0x10`, 320 bytes) whatever the caller's
/// codec; on the WebSocket channel it is the channel's codec (160 bytes of G.711, 320 of slin,
/// 640 of slin16). Stamped callers (slin, μ-law, A-law) check each echo: the stamp (re-encoded
/// from the decoded samples when G.711 came back as slin) and the audio after it, byte for
/// byte. A slin16 caller's echo is resampled, so it only counts non-silent frames.
final class SimulatedCall {
    let id: UInt32
    let uuid: [UInt8]
    let codec: CallerCodec
    let audio: CallerAudio
    let lengthSeconds: Double
    unowned let generator: LoadGenerator
    private var http: TCPStream?
    private var audioStream: TCPStream?
    private var httpReader = HTTPMessageReader()
    private var inbound = ByteBuffer(capacity: 4096)
    private var decoder = AudioSocketDecoder()
    /// WebSocket ingress: the upgrade answer's parser (until the 101), then the frame reader.
    private var handshake: WebSocketHandshakeResponseParser?
    private var webSocket = WebSocketMessageReader(maxMessageSize: 64 * 1024, role: .client)

    enum State { case idle, posting, connecting, sending, draining, done }
    private(set) var state = State.idle
    /// Scheduler bookkeeping: which phase bucket.
    var bucket = -1
    var sequence: UInt32 = 0
    var endSendingAt: UInt64 = 0
    var hangupAt: UInt64 = 0

    // Per-call observation state (the counts go straight into the generator's total).
    private var seen: [UInt64] = []
    private var lastArrival: UInt64 = 0
    private var received = 0
    private var echoed = 0
    private var stalled = false
    private var startedAt: UInt64 = 0
    private var endedAt: UInt64 = 0
    private var httpStatus = "-"
    private var outcome = "open"
    /// Connected while a fault kept the server from accepting (see `LoadGenerator`).
    var faultAffected = false
    /// `--line-echo-db`: what this caller heard, returned in what it sends.
    private var lineEcho: LineEcho?

    init(id: UInt32, runTag: UInt32, codec: CallerCodec, audio: CallerAudio, lengthSeconds: Double,
         generator: LoadGenerator) {
        self.id = id
        self.codec = codec
        self.audio = audio
        self.lengthSeconds = lengthSeconds
        self.generator = generator
        var bytes = [UInt8](repeating: 0, count: 16)
        for index in 0..<4 { bytes[index] = UInt8(truncatingIfNeeded: runTag >> (8 * UInt32(index))) }
        bytes[6] = 0x40  // version 4
        bytes[8] = 0x80  // RFC 4122 variant
        for index in 0..<4 { bytes[12 + index] = UInt8(truncatingIfNeeded: id >> (8 * UInt32(3 - index))) }
        uuid = bytes
        if let erl = generator.config.lineEchoDecibels {
            lineEcho = LineEcho(lossDecibels: erl, delayFrames: generator.config.lineEchoFrames)
        }
    }

    var uuidString: String {
        let hex = uuid.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }
        return hex[0..<4].joined() + "-" + hex[4..<6].joined() + "-" + hex[6..<8].joined() + "-"
            + hex[8..<10].joined() + "-" + hex[10..<16].joined()
    }

    /// Whether the server answered on the AudioSocket connection (audio or a hangup): it read
    /// the UUID, so the call must get exactly one `call_ended`.
    var reachedServer: Bool { received > 0 || outcome == "server_hangup" }

    /// One line for `--calls-out`: uuid codec start_ms end_ms reached outcome http sent echoed affected.
    func line(startTime: UInt64) -> String {
        let start = startedAt >= startTime ? (startedAt - startTime) / 1_000_000 : 0
        let end = endedAt >= startTime ? (endedAt - startTime) / 1_000_000 : 0
        return "\(uuidString) \(codec.rawValue) \(start) \(end) \(reachedServer ? 1 : 0) \(outcome) \(httpStatus) \(sequence) \(echoed) "
            + "\(faultAffected ? 1 : 0)"
    }

    // MARK: Setup

    func start() {
        startedAt = generator.loop.nanoseconds
        if let port = generator.config.httpPort {
            postCall(port: port)
        } else {
            connectAudio()
        }
    }

    private func postCall(port: Int) {
        state = .posting
        guard let address = SocketAddress(numericHost: generator.config.host, port: port),
              let stream = try? TCPStream(loop: generator.loop) else {
            generator.total.httpFailed += 1
            connectAudio()
            return
        }
        http = stream
        stream.connect(to: address) { [self] error in
            guard state == .posting else { return }
            if error != nil {
                generator.total.httpFailed += 1
                httpStatus = "connect_failed"
                stream.close()
                http = nil
                connectAudio()
                return
            }
            stream.setNoDelay()
            stream.onRead = { [self] bytes in
                httpReader.append(bytes)
                if let message = try? httpReader.next(), state == .posting {
                    httpStatus = message.startLine.count >= 2 ? String(message.startLine[1]) : "?"
                    if httpStatus == "200" { generator.total.httpOK += 1 } else { generator.total.httpFailed += 1 }
                    connectAudio()
                }
            }
            stream.onEnd = { [self] _ in
                if state == .posting {
                    generator.total.httpFailed += 1
                    httpStatus = "closed"
                    connectAudio()
                }
            }
            stream.startReading()
            let body = #"{"uuid":"\#(uuidString)","payload":{"from":"2000","to":"5001","uniqueid":"1770758888.\#(id)","channel":"PJSIP/2000-\#(id)"}}"#
            let request = "POST /call HTTP/1.1\r\nHost: \(generator.config.host):\(port)\r\nUser-Agent: asterisk-libcurl-agent/1.0\r\n"
                + "Accept: */*\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n" + body
            stream.write(Array(request.utf8))
        }
    }

    private var webSocketIngress: Bool { generator.config.ingress == .websocket }

    /// The size of an echoed frame's payload: 8 kHz slin on AudioSocket; the channel's own
    /// format on the WebSocket channel.
    private var expectedEchoBytes: Int { webSocketIngress ? codec.payloadLength : 320 }

    private func connectAudio() {
        state = .connecting
        let port = webSocketIngress ? generator.config.mediaPort : generator.config.port
        guard let address = SocketAddress(numericHost: generator.config.host, port: port),
              let stream = try? TCPStream(loop: generator.loop) else {
            fail()
            return
        }
        audioStream = stream
        stream.connect(to: address) { [self] error in
            guard error == nil, state == .connecting else {
                fail()
                return
            }
            stream.setNoDelay()
            stream.onRead = { [self] bytes in received(bytes) }
            stream.onEnd = { [self] _ in
                if state == .sending || state == .draining {
                    generator.total.closedEarly += 1
                    finish(sendHangup: false, outcome: "closed_early")
                }
            }
            stream.startReading()
            if webSocketIngress {
                upgrade(stream, port: port)
                return
            }
            var message: [UInt8] = [0x01, 0x00, 0x10]
            message += uuid
            stream.write(message)
            mediaUp()
        }
    }

    private func mediaUp() {
        generator.total.connected += 1
        state = .sending
        generator.callStarted(self)
    }

    // MARK: WebSocket channel set-up

    /// The upgrade request `res_websocket_client` sends for a `per_call_config` connection,
    /// the dial string's `v(uuid=…)` appended to the URI.
    private func upgrade(_ stream: TCPStream, port: Int) {
        var random = SystemRandomNumberGenerator()
        let key = WebSocketHandshake.makeKey(using: &random)
        handshake = WebSocketHandshakeResponseParser(key: key)
        stream.write(WebSocketHandshake.makeRequest(host: "\(generator.config.host):\(port)",
                                                    requestTarget: "/media?uuid=\(uuidString)", key: key))
    }

    /// `MEDIA_START` as chan_websocket writes it, in the configured control format.
    private var mediaStart: String {
        let format = codec == .slin16 ? "slin16" : codec.rawValue
        let channel = "WebSocket/avr/0x\(String(0x7f00_0000 + id, radix: 16))"
        let channelID = "1770758888.\(id)"
        if generator.config.jsonControl {
            return #"{"event":"MEDIA_START","connection_id":"avr","channel":"\#(channel)","channel_id":"\#(channelID)","#
                + #""format":"\#(format)","optimal_frame_size":\#(codec.payloadLength),"ptime":20,"#
                + #""channel_variables":{"AVR_UUID":"\#(uuidString)"}}"#
        }
        return "MEDIA_START connection_id:avr channel:\(channel) channel_id:\(channelID) format:\(format) "
            + "optimal_frame_size:\(codec.payloadLength) ptime:20"
    }

    private var dtmfEnd: String {
        generator.config.jsonControl
            ? #"{"event":"DTMF_END","channel_id":"1770758888.\#(id)","digit":"5"}"#
            : "DTMF_END digit:5 channel_id:1770758888.\(id)"
    }

    /// Sends one masked frame (a fresh key per frame, as every client must).
    private func sendWebSocket(_ opcode: WebSocketOpcode, _ payload: UnsafeRawBufferPointer) {
        guard let audioStream else { return }
        generator.webSocketOut.removeAll(keepingCapacity: true)
        WebSocketFrameEncoder.appendFrame(opcode: opcode, payload: payload, maskingKey: generator.nextMaskingKey(),
                                          to: &generator.webSocketOut)
        generator.webSocketOut.withUnsafeBytes { audioStream.write($0) }
    }

    private func sendWebSocketText(_ text: String) {
        var text = text
        text.withUTF8 { sendWebSocket(.text, UnsafeRawBufferPointer($0)) }
    }

    private func receivedUpgrade(_ bytes: UnsafeRawBufferPointer) {
        inbound.append(bytes)
        let answer: WebSocketHandshakeResponse?
        do { answer = try handshake?.parse(&inbound) } catch {
            printError("avr-loadgen: call \(id): upgrade refused: \(error)")
            fail()
            return
        }
        guard answer != nil else { return }
        handshake = nil
        mediaUp()
        sendWebSocketText(mediaStart)
        if !inbound.isEmpty {
            let rest = Array(inbound.bytes(at: 0, count: inbound.readableBytes))
            inbound.clear()
            rest.withUnsafeBytes { receivedWebSocket(UnsafeRawBufferPointer($0)) }
        }
    }

    private func receivedWebSocket(_ bytes: UnsafeRawBufferPointer) {
        let now = generator.loop.nanoseconds
        var serverEnded = false
        var closed = false
        do throws(WebSocketError) {
            try webSocket.read(bytes) { event in
                guard !serverEnded && !closed else { return }
                switch event {
                case .binary(let payload):
                    arrived(payload, now: now)
                case .text(let text):
                    // The server's commands: HANGUP ends the call; FLUSH_MEDIA and the rest
                    // need nothing from a simulated channel.
                    if String(decoding: text, as: UTF8.self).contains("HANGUP") { serverEnded = true }
                case .close:
                    closed = true
                case .ping, .pong:
                    break
                }
            }
        } catch {
            generator.total.closedEarly += 1
            finish(sendHangup: false, outcome: "bad_frame")
            return
        }
        if serverEnded {
            generator.total.serverHangups += 1
            if state == .sending || state == .draining { finish(sendHangup: false, outcome: "server_hangup") }
        } else if closed, state == .sending || state == .draining {
            generator.total.closedEarly += 1
            finish(sendHangup: false, outcome: "closed_early")
        }
    }

    private func fail() {
        guard state != .done else { return }
        generator.total.failed += 1
        audioStream?.close()
        audioStream = nil
        http?.close()
        http = nil
        state = .done
        outcome = "connect_failed"
        endedAt = generator.loop.nanoseconds
        generator.callFinished(self, early: true)
    }

    // MARK: Sending (called by the scheduler)

    /// Sends frame `sequence`, stamped with send time `now` (8 kHz callers).
    func sendFrame(now: UInt64) {
        guard let audioStream else { return }
        let viaWebSocket = webSocketIngress
        if let wav = generator.wavPCM {
            var message = [audio.codec.kind, UInt8(audio.codec.payloadLength >> 8), UInt8(audio.codec.payloadLength & 0xFF)]
            for index in 0..<160 {
                let offset = (Int(sequence) * 160 + index) * 2
                let sample = offset + 1 < wav.count ? Int16(bitPattern: UInt16(wav[offset]) | UInt16(wav[offset + 1]) << 8) : 0
                audio.codec.append(sample, to: &message)
            }
            if viaWebSocket {
                message.withUnsafeBytes { sendWebSocket(.binary, UnsafeRawBufferPointer(rebasing: $0[AudioSocketEncoder.headerLength...])) }
            } else {
                audioStream.write(message)
            }
        } else {
            let stamp = codec.stamped && generator.config.stampsFrames
                ? FrameStamp(callID: id, sequence: sequence, sentNanoseconds: now) : nil
            audio.withMessage(sequence: sequence, stamp: stamp) { message in
                if lineEcho != nil {
                    lineEcho!.send(message, heardFrames: received, on: audioStream)
                } else if viaWebSocket {
                    // The channel sends the bare payload: no AudioSocket header.
                    sendWebSocket(.binary, UnsafeRawBufferPointer(rebasing: message[AudioSocketEncoder.headerLength...]))
                } else {
                    audioStream.write(message)
                }
            }
        }
        sequence += 1
        generator.total.framesSent += 1
        if !codec.stamped { generator.total.unstampedSent += 1 }
        let every = generator.config.dtmfEverySeconds
        if every > 0, Int(sequence) % max(1, Int(every * 50)) == 0 {
            if viaWebSocket {
                sendWebSocketText(dtmfEnd)
            } else {
                audioStream.write([0x03, 0x00, 0x01, UInt8(ascii: "5")])
            }
            generator.total.dtmfSent += 1
        }
    }

    /// Stops sending; the hangup follows after the grace period.
    func stopSending(now: UInt64) {
        state = .draining
        hangupAt = now + UInt64(generator.config.graceSeconds * 1e9)
    }

    func finish(sendHangup: Bool, outcome: String) {
        guard state != .done else { return }
        state = .done
        self.outcome = outcome
        endedAt = generator.loop.nanoseconds
        if sendHangup, let audioStream {
            if webSocketIngress {
                // chan_websocket hangs up with a close frame carrying the cause (1000: normal).
                generator.webSocketOut.removeAll(keepingCapacity: true)
                WebSocketFrameEncoder.appendClose(code: .normalClosure, maskingKey: generator.nextMaskingKey(),
                                                  to: &generator.webSocketOut)
                audioStream.write(generator.webSocketOut)
            } else {
                audioStream.write(AudioSocketEncoder.hangupMessage)
            }
            audioStream.closeAfterFlush()
        } else {
            audioStream?.close()
        }
        audioStream = nil
        http?.close()
        http = nil
        if stalled { generator.total.callsStalled += 1 }
        let completed = outcome == "completed"
        if faultAffected { generator.total.affectedCalls += 1 }
        if completed {
            generator.total.completed += 1
            // Loss counts for calls the caller ended; a call the server cut short (STS
            // killed) loses its frames in flight by design, and one that waited in the
            // backlog during a fault may still have them queued when it hangs up.
            if codec.stamped {
                if faultAffected {
                    generator.total.affectedUnanswered += Int(sequence) - echoed
                } else {
                    generator.total.lost += Int(sequence) - echoed
                }
            }
        } else {
            generator.total.cutFramesUnanswered += codec.stamped ? Int(sequence) - echoed : 0
        }
        if reachedServer { generator.total.reachedServer += 1 }
        generator.callFinished(self, early: !completed)
    }

    /// The watchdog fired with this call still open.
    func record(outcome: String) {
        self.outcome = outcome
        endedAt = generator.loop.nanoseconds
    }

    // MARK: Receiving

    private func received(_ bytes: UnsafeRawBufferPointer) {
        if webSocketIngress {
            if handshake != nil {
                receivedUpgrade(bytes)
            } else if state == .sending || state == .draining {
                receivedWebSocket(bytes)
            }
            return
        }
        let now = generator.loop.nanoseconds
        inbound.append(bytes)
        while true {
            let frame: AudioSocketFrame?
            do { frame = try decoder.decode(&inbound) } catch {
                generator.total.closedEarly += 1
                finish(sendHangup: false, outcome: "bad_frame")
                return
            }
            guard let frame else { break }
            switch frame {
            case .audio(let audio):
                if audio.kind != .audio8kHz { generator.total.wrongKind += 1 }
                audio.withPayload(in: inbound) { arrived($0, now: now) }
            case .hangup:
                generator.total.serverHangups += 1
                if state == .sending || state == .draining { finish(sendHangup: false, outcome: "server_hangup") }
                return
            default:
                generator.total.wrongKind += 1
            }
        }
    }

    private func arrived(_ payload: UnsafeRawBufferPointer, now: UInt64) {
        generator.total.framesReceived += 1
        received += 1
        if lastArrival != 0 {
            let interval = now - lastArrival
            if received > 5 {
                generator.total.intervalSum += interval
                generator.total.intervalCount += 1
                let deviation = interval > 20_000_000 ? interval - 20_000_000 : 20_000_000 - interval
                if faultAffected { generator.total.affectedJitter.add(deviation) } else { generator.total.jitter.add(deviation) }
            }
            if interval > 100_000_000 {
                generator.total.stalls += 1
                stalled = true
            }
        }
        lastArrival = now
        if lineEcho != nil { lineEcho!.heard(payload, frame: received) }
        if generator.recording != nil { generator.record(payload, codec: codec) }
        if payload.count != expectedEchoBytes { generator.total.oddSize += 1 }
        if generator.config.onsetsOut != nil, payload.count >= 8, payload[0] == 0x41, payload[1] == 0x56,
            payload[2] == 0x52, payload[3] == 0x54 {  // "AVRT": the first frame of a marked TTS answer
            let turn = UInt32(payload[4]) | UInt32(payload[5]) << 8 | UInt32(payload[6]) << 16 | UInt32(payload[7]) << 24
            generator.agentOnset(self, turn: turn)
        }
        guard codec.stamped else {
            if payload.contains(where: { $0 != 0 }) { generator.total.unstampedEchoed += 1 }
            return
        }
        guard let stamp = audio.stamp(in: payload, scratch: &generator.stampScratch) else {
            generator.total.unstamped += 1
            return
        }
        guard stamp.callID == id, stamp.sequence < sequence else {
            generator.total.wrongCall += 1
            return
        }
        let word = Int(stamp.sequence / 64), bit = UInt64(1) << UInt64(stamp.sequence % 64)
        if word >= seen.count { seen += [UInt64](repeating: 0, count: word - seen.count + 64) }
        if seen[word] & bit != 0 {
            generator.total.duplicates += 1
            return
        }
        seen[word] |= bit
        echoed += 1
        generator.total.echoed += 1
        if !audio.contentMatches(payload, sequence: stamp.sequence) { generator.total.corrupted += 1 }
        let latency = now >= stamp.sentNanoseconds ? now - stamp.sentNanoseconds : 0
        if faultAffected { generator.total.affectedLatency.add(latency) } else { generator.total.latency.add(latency) }
    }
}

/// A 2-wire hybrid's echo for one simulated caller (`--line-echo-db`): keeps the last frames
/// the caller heard (8 kHz slin) and adds the one heard `delayFrames` frames before the newest
/// to each frame the caller sends, `lossDecibels` quieter. Buffers allocated once per call.
struct LineEcho {
    private let gain: Float
    private let delayFrames: Int
    private var heardRing: [Int16]
    private var message: [UInt8]
    private static let samples = 160

    init(lossDecibels: Float, delayFrames: Int) {
        gain = Float(pow(10, Double(-lossDecibels) / 20))
        self.delayFrames = delayFrames
        heardRing = [Int16](repeating: 0, count: (delayFrames + 1) * Self.samples)
        message = [UInt8](repeating: 0, count: AudioSocketEncoder.headerLength + 2 * Self.samples)
    }

    /// The caller heard `payload`, its `frame`-th frame (counted from 1).
    mutating func heard(_ payload: UnsafeRawBufferPointer, frame: Int) {
        guard payload.count == 2 * Self.samples else { return }
        let base = (frame % (delayFrames + 1)) * Self.samples
        heardRing.withUnsafeMutableBufferPointer { ring in
            for index in 0..<Self.samples {
                ring[base + index] = Int16(bitPattern: UInt16(payload[2 * index]) | UInt16(payload[2 * index + 1]) << 8)
            }
        }
    }

    /// Writes `original` (a whole AudioSocket slin message) with the echo added.
    mutating func send(_ original: UnsafeRawBufferPointer, heardFrames: Int, on stream: TCPStream) {
        let header = AudioSocketEncoder.headerLength
        guard original.count == message.count else {
            stream.write(original)
            return
        }
        let source = heardFrames - delayFrames
        let base = (max(source, 0) % (delayFrames + 1)) * Self.samples
        let gain = source > 0 ? self.gain : 0
        heardRing.withUnsafeBufferPointer { ring in
            message.withUnsafeMutableBytes { out in
                for index in 0..<header { out[index] = original[index] }
                for index in 0..<Self.samples {
                    let at = header + 2 * index
                    let caller = Float(Int16(bitPattern: UInt16(original[at]) | UInt16(original[at + 1]) << 8))
                    let mixed = Int16(max(-32768, min(32767, caller + gain * Float(ring[base + index]))))
                    let bits = UInt16(bitPattern: mixed)
                    out[at] = UInt8(bits & 0xFF)
                    out[at + 1] = UInt8(bits >> 8)
                }
            }
        }
        message.withUnsafeBytes { stream.write($0) }
    }
}
