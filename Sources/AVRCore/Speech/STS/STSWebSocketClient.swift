import AVRProtocol

/// A call's WebSocket connection to its STS service (RFC 6455 client, `ws://` or `wss://`).
///
/// resolving → connecting → handshaking → open → (closing →) closed. A single timer bounds
/// resolve, connect and handshake together. Caller audio sent before `open` is held in
/// `PreOpenAudio` and flushed in order right after `init`. When the caller hangs up, the
/// client sends its close frame and waits (at most `closeTimeout`) for the service's close
/// frame or its end of the connection before closing TCP itself (RFC 6455 §7.1.1: the server
/// closes first, so the client's port does not linger in TIME_WAIT there).
final class STSWebSocketClient: SpeechBackend {
    private enum State { case idle, connecting, handshaking, open, closing, closed }

    weak var delegate: SpeechBackendDelegate?
    private let loop: EventLoop
    private let url: EndpointURL
    private let uuid: String
    private let scratch: LoopScratch
    private let log: Logger
    private let connectTimeout: UInt64
    private let maxMessageSize: Int
    private var state = State.idle
    private var stream: ClientStream?
    private let tls: TLSClient?
    private var timer: Timer?
    private var inbound = ByteBuffer()
    private var handshake: WebSocketHandshakeResponseParser?
    private var reader: WebSocketMessageReader
    private var preOpen: HeldAudio
    /// Frames dropped because the service stopped reading (bounded send queue).
    private(set) var droppedFrames = 0
    private let maxPendingBytes = 256 * 1024
    /// How long a hung-up call waits for the service's close frame, ms.
    private let closeTimeout: UInt64 = 1000

    init(loop: EventLoop, url: EndpointURL, uuid: String, scratch: LoopScratch, log: Logger,
         connectTimeout: UInt64, tls: TLSClient? = nil, maxMessageSize: Int = 1 << 20,
         preOpenCapacity: Int = 3 * 16_000) {
        self.loop = loop
        self.tls = tls
        self.url = url
        self.uuid = uuid
        self.scratch = scratch
        self.log = log
        self.connectTimeout = connectTimeout
        self.maxMessageSize = maxMessageSize
        reader = WebSocketMessageReader(maxMessageSize: maxMessageSize)
        preOpen = HeldAudio(capacity: preOpenCapacity)
    }

    func start() {
        guard state == .idle else { return }
        state = .connecting
        if url.scheme.usesTLS && tls == nil { return fail(.tlsUnavailable(url)) }
        Connector.connect(loop: loop, host: url.host, port: url.port, tls: url.scheme.usesTLS ? tls : nil,
                          timeout: connectTimeout) { [weak self] result in
            guard let self, self.state == .connecting else {
                if case .success(let stream) = result { stream.close() }
                return
            }
            switch result {
            case .failure(let failure): self.fail(.unreachable(self.url, failure))
            case .success(let stream):
                self.stream = stream
                self.sendHandshake(on: stream)
            }
        }
    }

    private func sendHandshake(on stream: ClientStream) {
        state = .handshaking
        if let timer = try? Timer(loop: loop) {
            self.timer = timer
            timer.start(timeout: connectTimeout) { [weak self] in
                guard let self else { return }
                self.fail(.handshakeTimeout(self.url, milliseconds: self.connectTimeout))
            }
        }
        var generator = SystemRandomNumberGenerator()
        let key = WebSocketHandshake.makeKey(using: &generator)
        handshake = WebSocketHandshakeResponseParser(key: key)
        stream.onRead = { [weak self] bytes in self?.received(bytes) }
        stream.onEnd = { [weak self] error in
            guard let self else { return }
            if let error { return self.fail(.connectionFailed(error)) }
            if self.state == .open {
                self.log.info("STS closed the connection without a close frame")
                return self.finish(.finished, politely: false)
            }
            self.fail(.closedWithoutCloseFrame)
        }
        stream.startReading()
        stream.write(WebSocketHandshake.makeRequest(host: url.hostHeader, requestTarget: url.requestTarget, key: key))
    }

    private func received(_ bytes: UnsafeRawBufferPointer) {
        inbound.append(bytes)
        if state == .handshaking {
            do throws(WebSocketHandshakeError) {
                guard try handshake!.parse(&inbound) != nil else { return }
            } catch {
                fail(.handshakeRejected(url, error))
                inbound.releaseStorage()
                return
            }
            opened()
        }
        guard state == .open || state == .closing else { return }
        do throws(WebSocketError) {
            try reader.read(&inbound) { event in self.handle(event) }
        } catch {
            log.warn("STS protocol error: \(error); closing with \(error.closeCode.rawValue)")
            sendControl { key, out in WebSocketFrameEncoder.appendClose(code: error.closeCode, reason: "", maskingKey: key, to: &out) }
            return fail(.protocolViolation(error))
        }
        // The reader borrows `inbound` while events are handled, so release it only here.
        if state == .closed || (inbound.isEmpty && inbound.storage.capacity > 16 * 1024) { inbound.releaseStorage() }
    }

    private func opened() {
        state = .open
        timer?.close()
        timer = nil
        handshake = nil
        sendControl { key, out in
            STSOutboundMessage.appendInitFrame(uuid: uuid, maskingKey: key, to: &out)
        }
        preOpen.drain { pcm in sendAudioNow(pcm) }
        if preOpen.droppedBytes > 0 {
            log.warn("\(preOpen.droppedBytes) bytes of caller audio dropped while the STS connection opened")
        }
        delegate?.speechOpened()
    }

    private func handle(_ event: WebSocketEvent) {
        switch event {
        case .text(let payload):
            switch STSInboundMessage.parse(payload) {
            case .audio(let range):
                agentAudio(base64: UnsafeRawBufferPointer(rebasing: payload[range]))
            case .interruption:
                delegate?.speechInterrupted()
            case .needsGeneralParse:
                do throws(JSONError) {
                    interpret(try JSONValue.parse(payload))
                } catch {
                    log.warn("Invalid JSON from STS (\(error)): \(String(decoding: payload.prefix(200), as: UTF8.self))")
                }
            }
        case .binary(let payload):
            log.warn("Ignoring a \(payload.count)-byte binary message from STS (expected JSON text)")
        case .ping(let payload):
            guard state == .open else { return }
            sendControl { key, out in WebSocketFrameEncoder.appendPong(payload: payload, maskingKey: key, to: &out) }
        case .pong:
            break
        case .close where state == .closing:
            // The answer to our close frame: the handshake is complete.
            finish(.finished, politely: true)
        case .close(let code, let reason):
            let text = String(decoding: reason, as: UTF8.self)
            log.info("STS closed the WebSocket (code \(code?.rawValue ?? 1005)\(text.isEmpty ? "" : ": " + text))")
            sendControl { key, out in WebSocketFrameEncoder.appendClose(code: code, reason: "", maskingKey: key, to: &out) }
            finish(.finished, politely: true)
        }
    }

    /// Base64 audio straight from the frame: decoded into the loop's scratch, then one bulk
    /// append to playback (a per-sample closure writing a stored property would pay an
    /// exclusivity check per sample).
    private func agentAudio(base64: UnsafeRawBufferPointer) {
        scratch.pcm.removeAll(keepingCapacity: true)
        do throws(Base64Error) {
            try Base64.decode(base64, appendingTo: &scratch.pcm)
        } catch {
            return log.warn("STS audio with invalid base64 ignored: \(error)")
        }
        scratch.pcm.withUnsafeBytes { delegate?.speechAgentAudio(pcm: $0) }
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
            log.info("Ignoring STS message of unknown type \"\(type)\"")
        }
    }

    func sendCallerAudio(_ pcm: UnsafeRawBufferPointer) {
        switch state {
        case .open: sendAudioNow(pcm)
        case .idle, .connecting, .handshaking: preOpen.append(pcm)
        case .closing, .closed: break
        }
    }

    private func sendAudioNow(_ pcm: UnsafeRawBufferPointer) {
        guard let stream else { return }
        if stream.pendingWriteBytes > maxPendingBytes {
            droppedFrames += 1
            if droppedFrames == 1 || droppedFrames % 500 == 0 {
                log.warn("STS is not reading: \(droppedFrames) caller frame(s) dropped")
            }
            return
        }
        scratch.frame.removeAll(keepingCapacity: true)
        STSAudioMessageEncoder.appendFrame(pcm: pcm, maskingKey: scratch.maskingKeys.next(), to: &scratch.frame)
        stream.write(scratch.frame)
    }

    func sendDTMF(_ digit: UInt8) {
        guard state == .open else { return }
        let text = String(decoding: [digit], as: UTF8.self)
        sendControl { key, out in STSOutboundMessage.appendDTMFDigitFrame(text, maskingKey: key, to: &out) }
    }

    private func sendControl(_ build: (WebSocketMaskingKey, inout [UInt8]) -> Void) {
        guard let stream else { return }
        scratch.frame.removeAll(keepingCapacity: true)
        build(scratch.maskingKeys.next(), &scratch.frame)
        stream.write(scratch.frame)
    }

    /// Caller hangup: a close frame (1000), then the service's close frame or end of
    /// connection is awaited, at most `closeTimeout`, before TCP closes. Before `open` there is
    /// no WebSocket to close: the connection just closes.
    func close() {
        delegate = nil
        guard state == .open, let stream, let timer = try? Timer(loop: loop) else {
            return finish(.finished, politely: true)
        }
        sendControl { key, out in WebSocketFrameEncoder.appendClose(code: .normalClosure, reason: "call ended", maskingKey: key, to: &out) }
        state = .closing
        self.timer = timer
        // The timer's closure holds the client strongly: nothing else does once the call has
        // let go of its leg, and the wait must outlive that.
        timer.start(timeout: closeTimeout) {
            self.log.debug("STS did not answer the close frame within \(self.closeTimeout) ms; closing the connection")
            self.finish(.finished, politely: false)
        }
        stream.onEnd = { [weak self] _ in self?.finish(.finished, politely: false) }
    }

    private func fail(_ failure: SpeechFailure) {
        finish(.failed(failure), politely: false)
    }

    private func finish(_ reason: SpeechCloseReason, politely: Bool) {
        guard state != .closed else { return }
        state = .closed
        timer?.close()
        timer = nil
        if let stream {
            stream.onRead = nil
            stream.onEnd = nil
            if politely { stream.closeAfterFlush() } else { stream.close() }
        }
        stream = nil
        handshake = nil
        let delegate = self.delegate
        self.delegate = nil
        delegate?.speechClosed(reason)
    }
}
