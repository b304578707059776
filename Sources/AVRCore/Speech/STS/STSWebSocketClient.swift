import AVRProtocol

/// A call's WebSocket connection to its STS service (RFC 6455 client, `ws://` or `wss://`).
///
/// The life of the connection is `STSWebSocketStateMachine`'s; this class is its I/O shell: it
/// turns socket, timer and caller callbacks into the machine's events, decodes the bytes with
/// the pure parsers, and carries out the actions. A single timer bounds resolve, connect and
/// handshake together. When the caller hangs up, the client sends its close frame and waits
/// (at most `closeTimeout`) for the service's close frame or its end of the connection before
/// closing TCP itself (RFC 6455 §7.1.1: the server closes first, so the client's port does not
/// linger in TIME_WAIT there).
///
/// The same timer, while the connection is open, paces the liveness pings (`STS_PING_INTERVAL`,
/// `STS_PING_TIMEOUT`): no libuv timer is added per call, and nothing is done per frame but
/// one stored flag per read.
///
/// What the client queues toward a service that does not read is bounded: caller audio and
/// DTMF go through `STSSendBudget` (dropped past 256 KiB unsent); pongs are coalesced (while
/// earlier bytes are still unsent only the latest ping's pong is kept, and it is written when
/// the socket drains: RFC 6455 §5.5.3 allows answering only the most recent ping), and a ping
/// flood ends the connection (`WebSocketPingFloodGuard`). Our own pings are one per interval
/// and the close frame one per connection.
final class STSWebSocketClient: SpeechBackend {
    weak var delegate: SpeechBackendDelegate?
    var kind: SpeechBackendKind { .stsWebSocket }
    private let loop: EventLoop
    private let uuid: String
    private let scratch: LoopScratch
    private let log: Logger
    private var machine: STSWebSocketStateMachine
    private var stream: ClientStream?
    private let tls: TLSClient?
    private var timer: Timer?
    /// The handshake answer while it arrives.
    private var inbound = ByteBuffer()
    private var handshake: WebSocketHandshakeResponseParser?
    private var reader: WebSocketMessageReader
    /// Bounds the send queue when the service stops reading.
    private var budget = STSSendBudget()
    /// The payload of the latest ping, while its pong waits for the socket to drain.
    private var deferredPong: [UInt8] = []
    private var pongDeferred = false
    /// How long a hung-up call waits for the service's close frame, ms.
    private let closeTimeout: UInt64 = 1000

    private var url: EndpointURL { machine.url }

    init(loop: EventLoop, url: EndpointURL, uuid: String, scratch: LoopScratch, log: Logger,
         connectTimeout: UInt64, tls: TLSClient? = nil, maxMessageSize: Int = 1 << 20,
         preOpenCapacity: Int = 3 * 16_000, liveness: WebSocketLiveness.Settings = .off) {
        self.loop = loop
        self.tls = tls
        self.uuid = uuid
        self.scratch = scratch
        self.log = log
        machine = STSWebSocketStateMachine(url: url, connectTimeout: connectTimeout, preOpenCapacity: preOpenCapacity,
                                           liveness: liveness)
        reader = WebSocketMessageReader(maxMessageSize: maxMessageSize)
    }

    // MARK: Events in

    func start() {
        perform(machine.start(tlsAvailable: tls != nil))
    }

    func sendCallerAudio(_ pcm: UnsafeRawBufferPointer) {
        if case .sendAudio = machine.callerAudio(pcm) { sendAudioNow(pcm) }
    }

    func sendDTMF(_ digit: UInt8) {
        guard case .sendDTMF = machine.dtmf(), admitted() else { return }
        let text = String(decoding: [digit], as: UTF8.self)
        sendControl { key, out in STSOutboundMessage.appendDTMFDigitFrame(text, maskingKey: key, to: &out) }
    }

    /// Caller hangup: nobody listens any more; see `STSWebSocketStateMachine.hangup()`.
    func close() {
        delegate = nil
        perform(machine.hangup())
    }

    /// Frames are read in place from the loop's read buffer (only an incomplete frame is
    /// copied, by the reader); only the handshake answer is gathered in `inbound`.
    private func received(_ bytes: UnsafeRawBufferPointer) {
        if case .handshaking = machine.state, let parser = handshake {
            inbound.append(bytes)
            var parser = parser
            let answered: Bool
            do throws(WebSocketHandshakeError) {
                answered = try parser.parse(&inbound) != nil
            } catch {
                inbound.releaseStorage()
                return perform(machine.handshakeRejected(error))
            }
            handshake = parser
            guard answered else { return }
            perform(machine.handshakeAnswered(now: loop.milliseconds))
            // Frames that came with the answer.
            let rest = inbound
            inbound = ByteBuffer()
            rest.withReadableBytes { readFrames($0) }
            return
        }
        readFrames(bytes)
    }

    private func readFrames(_ bytes: UnsafeRawBufferPointer) {
        guard !bytes.isEmpty else { return }
        machine.heardFromService()
        do throws(WebSocketError) {
            try reader.read(bytes) { event in
                let action = machine.received(event, now: loop.milliseconds)
                if case .deliver = action, case .text(let payload) = event { return interpret(payload) }
                perform(action, event: event)
            }
        } catch {
            perform(machine.protocolViolated(error))
        }
    }

    // MARK: Actions out

    private func perform(_ action: STSWebSocketStateMachine.Action, event: WebSocketEvent? = nil) {
        switch action {
        case .none, .deliver, .sendAudio, .sendDTMF:
            break
        case .connect:
            Connector.connect(loop: loop, host: url.host, port: url.port, tls: url.scheme.usesTLS ? tls : nil,
                              timeout: machine.connectTimeout) { [weak self] result in
                guard let self else {
                    if case .success(let stream) = result { stream.close() }
                    return
                }
                switch result {
                case .failure(let failure):
                    self.perform(self.machine.connectFailed(failure))
                case .success(let stream):
                    guard case .sendHandshake = self.machine.connected() else { return stream.close() }
                    self.stream = stream
                    self.sendHandshake(on: stream)
                }
            }
        case .sendHandshake:
            break // carried out where the connection is at hand (above)
        case .open(let held, let wakeIn):
            if let wakeIn { armTimer(wakeIn) } else {
                timer?.close()
                timer = nil
            }
            handshake = nil
            sendControl { key, out in STSOutboundMessage.appendInitFrame(uuid: uuid, maskingKey: key, to: &out) }
            var held = held
            held.drain { pcm in sendAudioNow(pcm) }
            if held.droppedBytes > 0 {
                log.warn("\(held.droppedBytes) bytes of caller audio dropped while the STS connection opened")
            }
            delegate?.speechOpened()
        case .ignoreBinary:
            if case .binary(let payload) = event {
                log.limited(.unexpectedMessage, .warn, "Ignoring a \(payload.count)-byte binary message from STS (expected JSON text)")
            }
        case .sendPong:
            if case .ping(let payload) = event { answerPing(payload) }
        case .sendPing(let wakeIn):
            sendControl { key, out in
                WebSocketFrameEncoder.appendPing(payload: UnsafeRawBufferPointer(start: nil, count: 0), maskingKey: key, to: &out)
            }
            armTimer(wakeIn)
        case .sleep(let delay):
            armTimer(delay)
        case .answerClose(let code):
            if case .close(_, let reason) = event {
                let text = String(decoding: reason, as: UTF8.self)
                log.info("STS closed the WebSocket (code \(code?.rawValue ?? 1005)\(text.isEmpty ? "" : ": " + text))")
            }
            sendControl { key, out in WebSocketFrameEncoder.appendClose(code: code, reason: "", maskingKey: key, to: &out) }
            finish(.finished, politely: true)
        case .startClosing:
            sendControl { key, out in WebSocketFrameEncoder.appendClose(code: .normalClosure, reason: "call ended", maskingKey: key, to: &out) }
            if timer == nil { timer = try? Timer(loop: loop) }
            guard let timer else { return perform(machine.timerFired()) }
            // The timer's closure holds the client strongly: nothing else does once the call has
            // let go of its backend, and the wait must outlive that.
            timer.start(timeout: closeTimeout) {
                self.log.debug("STS did not answer the close frame within \(self.closeTimeout) ms; closing the connection")
                self.perform(self.machine.timerFired())
            }
        case .finish(let reason, let politely):
            finish(reason, politely: politely)
        case .failProtocol(let error):
            log.warn("STS protocol error: \(error); closing with \(error.closeCode.rawValue)")
            sendControl { key, out in WebSocketFrameEncoder.appendClose(code: error.closeCode, reason: "", maskingKey: key, to: &out) }
            finish(.failed(.protocolViolation(error)), politely: false)
        case .failPolicy(let failure):
            sendControl { key, out in WebSocketFrameEncoder.appendClose(code: .policyViolation, reason: "", maskingKey: key, to: &out) }
            finish(.failed(failure), politely: false)
        }
    }

    /// The liveness timer (the handshake's, kept): a weak capture, since the call holds the
    /// client while it is open.
    private func armTimer(_ delay: UInt64) {
        if timer == nil { timer = try? Timer(loop: loop) }
        timer?.start(timeout: delay) { [weak self] in
            guard let self else { return }
            self.perform(self.machine.timerFired(now: self.loop.milliseconds))
        }
    }

    /// Answers now when nothing is waiting to go out; else keeps only this ping's payload
    /// (replacing any earlier one) and answers once the socket has drained.
    private func answerPing(_ payload: UnsafeRawBufferPointer) {
        guard let stream else { return }
        if stream.pendingWriteBytes == 0 && !pongDeferred {
            return sendControl { key, out in WebSocketFrameEncoder.appendPong(payload: payload, maskingKey: key, to: &out) }
        }
        deferredPong.removeAll(keepingCapacity: true)
        deferredPong.append(contentsOf: payload)
        guard !pongDeferred else { return }
        pongDeferred = true
        stream.onDrain = { [weak self] in self?.sendDeferredPong() }
    }

    private func sendDeferredPong() {
        guard pongDeferred, let stream else { return }
        pongDeferred = false
        stream.onDrain = nil
        let payload = deferredPong
        payload.withUnsafeBytes { payload in
            sendControl { key, out in WebSocketFrameEncoder.appendPong(payload: payload, maskingKey: key, to: &out) }
        }
    }

    /// Whether an optional message (caller audio, DTMF) may be queued; logs drops.
    private func admitted() -> Bool {
        guard let stream else { return false }
        return budget.admits(stream, log: log)
    }

    private func sendHandshake(on stream: ClientStream) {
        if let timer = try? Timer(loop: loop) {
            self.timer = timer
            timer.start(timeout: machine.connectTimeout) { [weak self] in
                guard let self else { return }
                self.perform(self.machine.timerFired())
            }
        }
        var generator = SystemRandomNumberGenerator()
        let key = WebSocketHandshake.makeKey(using: &generator)
        handshake = WebSocketHandshakeResponseParser(key: key)
        stream.onRead = { [weak self] bytes in self?.received(bytes) }
        stream.onEnd = { [weak self] error in
            guard let self else { return }
            self.perform(self.machine.peerEnded(error))
        }
        stream.startReading()
        stream.write(WebSocketHandshake.makeRequest(host: url.hostHeader, requestTarget: url.requestTarget, key: key))
    }

    // MARK: Messages

    /// A text message: the fixed-shape scanner takes `audio` and `interruption`; anything
    /// else goes through the general JSON parser.
    private func interpret(_ payload: UnsafeRawBufferPointer) {
        switch STSInboundMessage.parse(payload) {
        case .audio(let range):
            agentAudio(base64: UnsafeRawBufferPointer(rebasing: payload[range]))
        case .interruption:
            delegate?.speechInterrupted()
        case .needsGeneralParse:
            do throws(JSONError) {
                interpret(try JSONValue.parse(payload))
            } catch {
                log.limited(.unexpectedMessage, .warn,
                            "Invalid JSON from STS (\(error)): \(String(decoding: payload.prefix(200), as: UTF8.self))")
            }
        }
    }

    /// Base64 audio straight from the frame into playback, in one pass.
    private func agentAudio(base64: UnsafeRawBufferPointer) {
        do throws(Base64Error) {
            try delegate?.speechAgentAudio(base64: base64)
        } catch {
            log.limited(.unexpectedMessage, .warn, "STS audio with invalid base64 ignored: \(error)")
        }
    }

    /// Messages the fast path declined: audio with escapes or extra keys, transcripts, errors.
    private func interpret(_ message: JSONValue) {
        let type = message["type"]?.stringValue ?? ""
        switch type {
        case "audio":
            if let text = message["audio"]?.stringValue {
                Array(text.utf8).withUnsafeBytes { agentAudio(base64: $0) }
            }
        case "interruption":
            delegate?.speechInterrupted()
        case "transcript", "transcription":
            delegate?.speechTranscript(role: TranscriptRole(label: message["role"]?.stringValue ?? ""),
                                       text: message["text"]?.stringValue ?? "")
        case "error":
            delegate?.speechError(.serviceError(message["message"]?.stringValue ?? message.serialized()))
        default:
            log.limited(.unexpectedMessage, .info, "Ignoring STS message of unknown type \"\(type)\"")
        }
    }

    private func sendAudioNow(_ pcm: UnsafeRawBufferPointer) {
        guard let stream, admitted() else { return }
        scratch.frame.removeAll(keepingCapacity: true)
        STSAudioMessageEncoder.appendFrame(pcm: pcm, maskingKey: scratch.maskingKeys.next(), to: &scratch.frame)
        stream.write(scratch.frame)
    }

    private func sendControl(_ build: (WebSocketMaskingKey, inout [UInt8]) -> Void) {
        guard let stream else { return }
        scratch.frame.removeAll(keepingCapacity: true)
        build(scratch.maskingKeys.next(), &scratch.frame)
        stream.write(scratch.frame)
    }

    private func finish(_ reason: SpeechCloseReason?, politely: Bool) {
        timer?.close()
        timer = nil
        pongDeferred = false
        if let stream {
            stream.onRead = nil
            stream.onEnd = nil
            stream.onDrain = nil
            if politely { stream.closeAfterFlush() } else { stream.close() }
        }
        stream = nil
        handshake = nil
        let delegate = self.delegate
        self.delegate = nil
        if let reason { delegate?.speechClosed(reason) }
    }
}
