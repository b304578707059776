import AVRBenchSupport
import AVRCore
import AVRProtocol

/// One simulated Asterisk caller: optional `POST /call` (connection kept open, idle, for the
/// whole call, as `CURL()` does), then the AudioSocket connection — UUID, a frame every
/// 20 ms when the scheduler says so, optional DTMF — and a hangup. Everything that comes back
/// is timed on arrival.
final class SimulatedCall {
    let id: UInt32
    let uuid: [UInt8]
    unowned let generator: LoadGenerator
    private var http: TCPStream?
    private var audio: TCPStream?
    private var httpReader = HTTPMessageReader()
    private var inbound = ByteBuffer(capacity: 4096)
    private var decoder = AudioSocketDecoder()

    enum State { case idle, posting, connecting, sending, draining, done }
    private(set) var state = State.idle
    /// Scheduler bookkeeping: which phase bucket, and where in it.
    var bucket = -1
    var sequence: UInt32 = 0
    var endSendingAt: UInt64 = 0
    var hangupAt: UInt64 = 0

    // Per-call observation state (the counts go straight into the generator's total).
    private var seen: [UInt64] = []
    private var lastArrival: UInt64 = 0
    private var stalled = false

    init(id: UInt32, runTag: UInt32, generator: LoadGenerator) {
        self.id = id
        self.generator = generator
        var bytes = [UInt8](repeating: 0, count: 16)
        for index in 0..<4 { bytes[index] = UInt8(truncatingIfNeeded: runTag >> (8 * UInt32(index))) }
        bytes[6] = 0x40  // version 4
        bytes[8] = 0x80  // RFC 4122 variant
        for index in 0..<4 { bytes[12 + index] = UInt8(truncatingIfNeeded: id >> (8 * UInt32(3 - index))) }
        uuid = bytes
    }

    var uuidString: String {
        let hex = uuid.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }
        return hex[0..<4].joined() + "-" + hex[4..<6].joined() + "-" + hex[6..<8].joined() + "-"
            + hex[8..<10].joined() + "-" + hex[10..<16].joined()
    }

    // MARK: Setup

    func start() {
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
            if error != nil {
                generator.total.httpFailed += 1
                stream.close()
                http = nil
                connectAudio()
                return
            }
            stream.setNoDelay()
            stream.onRead = { [self] bytes in
                httpReader.append(bytes)
                if let message = try? httpReader.next(), state == .posting {
                    if message.startLine.count >= 2 && message.startLine[1] == "200" { generator.total.httpOK += 1 } else { generator.total.httpFailed += 1 }
                    connectAudio()
                }
            }
            stream.onEnd = { [self] _ in
                if state == .posting { generator.total.httpFailed += 1; connectAudio() }
            }
            stream.startReading()
            let body = #"{"uuid":"\#(uuidString)","payload":{"from":"2000","to":"5001","uniqueid":"1770758888.\#(id)","channel":"PJSIP/2000-\#(id)"}}"#
            let request = "POST /call HTTP/1.1\r\nHost: \(generator.config.host):\(port)\r\nUser-Agent: asterisk-libcurl-agent/1.0\r\n"
                + "Accept: */*\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n" + body
            stream.write(Array(request.utf8))
        }
    }

    private func connectAudio() {
        state = .connecting
        guard let address = SocketAddress(numericHost: generator.config.host, port: generator.config.port),
              let stream = try? TCPStream(loop: generator.loop) else {
            fail()
            return
        }
        audio = stream
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
                    finish(sendHangup: false)
                }
            }
            stream.startReading()
            var message: [UInt8] = [0x01, 0x00, 0x10]
            message += uuid
            stream.write(message)
            generator.total.connected += 1
            state = .sending
            generator.callStarted(self)
        }
    }

    private func fail() {
        generator.total.failed += 1
        audio?.close()
        audio = nil
        http?.close()
        http = nil
        state = .done
        generator.callFinished(self)
    }

    // MARK: Sending (called by the scheduler)

    /// Sends frame `sequence` with send time `now`; `frame` is the generator's scratch message
    /// (header + payload template), stamped in place.
    func sendFrame(_ frame: inout [UInt8], now: UInt64) {
        guard let audio else { return }
        if generator.wavPCM == nil {
            frame.withUnsafeMutableBytes { bytes in
                FrameStamp(callID: id, sequence: sequence, sentNanoseconds: now)
                    .write(into: UnsafeMutableRawBufferPointer(rebasing: bytes[AudioSocketEncoder.headerLength...]))
            }
        }
        frame.withUnsafeBytes { audio.write($0) }
        sequence += 1
        generator.total.framesSent += 1
        let every = generator.config.dtmfEverySeconds
        if every > 0, Int(sequence) % max(1, Int(every * 50)) == 0 {
            audio.write([0x03, 0x00, 0x01, UInt8(ascii: "5")])
            generator.total.dtmfSent += 1
        }
    }

    /// Stops sending; the hangup follows after the grace period.
    func stopSending(now: UInt64) {
        state = .draining
        hangupAt = now + UInt64(generator.config.graceSeconds * 1e9)
    }

    func finish(sendHangup: Bool) {
        guard state != .done else { return }
        state = .done
        if sendHangup, let audio {
            audio.write(AudioSocketEncoder.hangupMessage)
            audio.closeAfterFlush()
        } else {
            audio?.close()
        }
        audio = nil
        http?.close()
        http = nil
        if stalled { generator.total.callsStalled += 1 }
        generator.callFinished(self)
    }

    // MARK: Receiving

    private func received(_ bytes: UnsafeRawBufferPointer) {
        let now = generator.loop.nanoseconds
        inbound.append(bytes)
        while true {
            let frame: AudioSocketFrame?
            do { frame = try decoder.decode(&inbound) } catch {
                generator.total.closedEarly += 1
                finish(sendHangup: false)
                return
            }
            guard let frame else { break }
            switch frame {
            case .audio(let audio):
                audio.withPayload(in: inbound) { arrived($0, now: now) }
            case .hangup:
                generator.total.serverHangups += 1
                if state == .sending || state == .draining { finish(sendHangup: false) }
                return
            default:
                break
            }
        }
    }

    private func arrived(_ payload: UnsafeRawBufferPointer, now: UInt64) {
        generator.total.framesReceived += 1
        if lastArrival != 0 {
            let interval = now - lastArrival
            if generator.total.framesReceived > 5 {
                generator.total.intervalSum += interval
                generator.total.intervalCount += 1
                generator.total.jitter.add(interval > 20_000_000 ? interval - 20_000_000 : 20_000_000 - interval)
            }
            if interval > 100_000_000 {
                generator.total.stalls += 1
                stalled = true
            }
        }
        lastArrival = now
        if generator.recording != nil { generator.record(payload) }
        guard let stamp = FrameStamp.read(from: payload) else {
            generator.total.unstamped += 1
            return
        }
        guard stamp.callID == id else {
            generator.total.wrongCall += 1
            return
        }
        let word = Int(stamp.sequence / 64), bit = UInt64(1) << UInt64(stamp.sequence % 64)
        guard stamp.sequence < sequence else { generator.total.wrongCall += 1; return }
        if word >= seen.count { seen += [UInt64](repeating: 0, count: word - seen.count + 64) }
        if seen[word] & bit != 0 {
            generator.total.duplicates += 1
            return
        }
        seen[word] |= bit
        generator.total.echoed += 1
        generator.total.latency.add(now >= stamp.sentNanoseconds ? now - stamp.sentNanoseconds : 0)
    }
}
