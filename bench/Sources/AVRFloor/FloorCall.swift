import AVRCore
import AVRProtocol

/// One relayed call: AudioSocket in, one masked WebSocket frame out per caller frame, one
/// AudioSocket frame back per 20 ms tick. Only framing: no JSON, base64, codec or webhook.
final class FloorCall {
    unowned let relay: FloorRelay
    let caller: TCPStream
    private var sts: TCPStream?
    private var stsOpen = false
    private var callerBuffer = ByteBuffer(capacity: 4096)
    private var callerDecoder = AudioSocketDecoder()
    private var stsBuffer = ByteBuffer(capacity: 4096)
    private var stsDecoder = WebSocketFrameDecoder()
    private var handshakeBytes: [UInt8] = []
    var ring = FrameRing()
    var slot = -1
    private var ended = false

    init(relay: FloorRelay, caller: TCPStream) {
        self.relay = relay
        self.caller = caller
    }

    func start() {
        caller.onRead = { [self] bytes in callerRead(bytes) }
        caller.onEnd = { [self] _ in end() }
        caller.startReading()
    }

    private func callerRead(_ bytes: UnsafeRawBufferPointer) {
        callerBuffer.append(bytes)
        while true {
            guard let frame = try? callerDecoder.decode(&callerBuffer) else {
                if callerBuffer.readableBytes > 65_538 { end() }
                return
            }
            switch frame {
            case .uuid: connectSTS()
            case .audio(let audio):
                // Like a relay with no pre-open buffer: frames before the STS is open are dropped.
                guard stsOpen else { continue }
                audio.withPayload(in: callerBuffer) { ring.push($0) }
                relay.stsFrame.withUnsafeBytes { sts?.write($0) }
            case .hangup: end(); return
            default: break
            }
        }
    }

    private func connectSTS() {
        guard sts == nil, let stream = try? TCPStream(loop: relay.loop) else { return }
        sts = stream
        stream.connect(to: relay.stsAddress) { [self] error in
            guard error == nil, !ended else { end(); return }
            stream.setNoDelay()
            stream.onRead = { [self] bytes in stsRead(bytes) }
            stream.onEnd = { [self] _ in end() }
            stream.startReading()
            stream.write(relay.handshakeRequest)
            relay.started(self)
        }
    }

    private func stsRead(_ bytes: UnsafeRawBufferPointer) {
        var chunk = bytes
        if !stsOpen {
            handshakeBytes.append(contentsOf: bytes)
            guard let end = handshakeBytes.indices.dropLast(3).first(where: {
                handshakeBytes[$0] == 13 && handshakeBytes[$0 + 1] == 10 && handshakeBytes[$0 + 2] == 13 && handshakeBytes[$0 + 3] == 10
            }) else { return }
            stsOpen = true
            let rest = handshakeBytes.count - (end + 4)
            chunk = UnsafeRawBufferPointer(rebasing: bytes[(bytes.count - rest)...])
            handshakeBytes = []
        }
        stsBuffer.append(chunk)
        while let frame = try? stsDecoder.decode(&stsBuffer) {
            if frame.header.opcode == .text || frame.header.opcode == .binary { ring.answerOne() }
            if frame.header.opcode == .connectionClose { end(); return }
        }
    }

    /// The 20 ms tick: one frame back to the caller (silence when nothing is ready).
    func play() {
        let played = ring.playOne { payload in relay.writeAudio(payload, to: caller) }
        if !played { relay.silence.withUnsafeBytes { caller.write($0) } }
    }

    func end() {
        guard !ended else { return }
        ended = true
        relay.ended(self)
        caller.close()
        sts?.close()
        sts = nil
    }
}
