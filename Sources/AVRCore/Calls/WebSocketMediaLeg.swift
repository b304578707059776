import AVRProtocol

/// A call's leg through Asterisk's WebSocket channel (`Dial(WebSocket/<connection>/c(<codec>))`):
/// Asterisk connects to the HTTP port's `/media` endpoint, the HTTP server answers the upgrade
/// and hands the connection over, and this leg speaks the channel's protocol on it.
///
/// Asterisk's first message is the text event `MEDIA_START`, which names the codec (the
/// channel's native format, both directions) and, with it or the URI, the call: the UUID is
/// the URI's `uuid=` parameter (the dial string's `v(uuid=…)`), else the `AVR_UUID` channel
/// variable (JSON control format only), else the channel id when it is a UUID, else a fresh
/// one. Binary frames are media in that codec; other text frames are events (`DTMF_END`,
/// `MEDIA_XOFF`/`MEDIA_XON`, ...; `MediaControlParser`), which are read in either control
/// format. Our media goes out as 20 ms binary frames in one of two ways (`WS_MEDIA_PACING`):
/// `core`, one frame per playback tick, paced by us as on AudioSocket, so the channel's own
/// queue stays near empty, and `MEDIA_XOFF` (its queue is full) pauses it until `MEDIA_XON`,
/// the frames meanwhile counted as dropped; or `asterisk`, every whole frame as soon as it is
/// queued (`sendsAhead`), paced by the channel's queue (`ChannelQueuePacer`): `MEDIA_XOFF`
/// stops the taking from our playout queue until `MEDIA_XON`, so nothing is dropped. An
/// interruption sends `FLUSH_MEDIA`; the agent ending the call sends `HANGUP` and a close.
final class WebSocketMediaLeg: CallerLeg {
    private let stream: TCPStream
    private var reader = WebSocketMessageReader(maxMessageSize: MediaControlParser.maxLength, role: .server)
    private weak var session: CallSession?
    /// The URI's `uuid=` parameter, when it has one.
    private let uriUUID: CallUUID?
    /// Bytes that came after the upgrade request in the same read.
    private var leftover: [UInt8]
    private var format: MediaFormat?
    private var controlFormat: MediaControlFormat = .plainText
    /// The AudioSocket kind the caller's frames are handed on as (the session decodes kinds).
    private var kind: AudioSocketKind = .audio8kHz
    private var upsampler: LinearUpsampler?
    /// One outgoing binary frame: a 4-byte header, then the payload.
    private var frame = UnsafeMutableRawBufferPointer(start: nil, count: 0)
    /// A short agent frame padded to 20 ms (the channel drops a partial frame).
    private var padded = UnsafeMutableBufferPointer<Int16>(start: nil, count: 0)
    /// `MEDIA_XOFF`/`MEDIA_XON`, and how much of ours the channel holds (an estimate).
    private var channel = ChannelQueuePacer()
    let sendsAhead: Bool
    private var closeSent = false
    private var peerGone = false

    init(stream: TCPStream, uriUUID: CallUUID?, leftover: [UInt8], pacing: MediaPacing = .core) {
        self.stream = stream
        sendsAhead = pacing == .asterisk
        self.uriUUID = uriUUID
        self.leftover = leftover
    }

    deinit {
        frame.deallocate()
        padded.deallocate()
    }

    var peerAddress: SocketAddress? { stream.peerAddress }

    private var ended: Bool { session?.ended ?? true }

    func start(_ session: CallSession) {
        self.session = session
        stream.setNoDelay()
        stream.onRead = { [weak self] bytes in self?.received(bytes) }
        stream.onEnd = { [weak self] error in
            guard let self else { return }
            self.peerGone = true
            if let error { self.session?.log.debug("WebSocket media connection failed: \(error)") }
            self.session?.end(.callerClosed)
        }
        stream.onClose = { [weak self] in self?.session?.legClosed() }
        if !leftover.isEmpty {
            var bytes = leftover
            leftover = []
            bytes.withUnsafeMutableBytes { received(UnsafeRawBufferPointer($0)) }
        }
        if !ended { stream.startReading() }
    }

    // MARK: From Asterisk

    private func received(_ bytes: UnsafeRawBufferPointer) {
        guard !ended else { return }
        do throws(WebSocketError) {
            try reader.read(bytes) { event in
                guard !ended else { return }
                handle(event)
            }
        } catch {
            guard !ended else { return }
            sendClose(error.closeCode)
            session?.end(.mediaProtocolError("\(error)"))
        }
        if ended { reader = WebSocketMessageReader(maxMessageSize: 125, role: .server) }
    }

    private func handle(_ event: WebSocketEvent) {
        guard let session else { return }
        switch event {
        case .binary(let payload):
            guard format != nil else {
                return session.end(.mediaProtocolError("media before MEDIA_START"))
            }
            session.callerAudio(kind: kind, payload: payload)
        case .text(let text):
            let parsed = Result { () throws(MediaControlError) in try MediaControlParser.parse(text) }
            switch parsed {
            case .success(let control): handle(control, session)
            case .failure(let error):
                session.log.limited(.callerMessage, .warn, "Ignoring a control message from Asterisk's WebSocket channel: \(error)")
            }
        case .ping(let payload):
            var pong: [UInt8] = []
            WebSocketFrameEncoder.appendServerFrame(opcode: .pong, payload: payload, to: &pong)
            stream.write(pong)
        case .pong:
            break
        case .close(let code, _):
            // Asterisk hung up (it closes with the hangup's cause, 1000 when normal).
            sendClose(code.map { $0.isValidOnTheWire ? $0 : .normalClosure } ?? .normalClosure)
            session.end(.callerHungUp)
        }
    }

    private func handle(_ control: MediaControlEvent, _ session: CallSession) {
        switch control {
        case .mediaStart(let start):
            guard format == nil else {
                return session.log.limited(.callerMessage, .warn, "Ignoring a second MEDIA_START")
            }
            mediaStarted(start, session)
        case .dtmfEnd(let byte):
            guard format != nil else { return }
            if let digit = DTMFDigit(ascii: byte) {
                session.callerDTMF(digit)
            } else {
                session.log.limited(.invalidDTMF, .warn,
                                    "Ignoring a DTMF_END with byte 0x\(String(byte, radix: 16, uppercase: true)), which is no DTMF key")
            }
        case .mediaXOFF:
            if !channel.paused { session.log.debug("MEDIA_XOFF: Asterisk's queue of our media is full; pausing") }
            channel.xoff()
        case .mediaXON:
            if channel.paused { session.log.debug("MEDIA_XON: sending media again") }
            channel.xon()
        case .error(let text):
            session.log.limited(.callerMessage, .warn, "Asterisk's WebSocket channel refused a command: \(text)")
        case .status, .queueDrained, .mediaBufferingCompleted, .mediaMarkProcessed, .other:
            session.log.debug("WebSocket channel event: \(control)")
        }
    }

    private func mediaStarted(_ start: MediaStart, _ session: CallSession) {
        controlFormat = start.controlFormat
        guard let format = MediaFormat(asteriskName: start.format) else {
            return session.end(.mediaProtocolError("MEDIA_START format \(start.format.prefix(32).debugDescription) "
                + "is not one we take (ulaw, alaw, slin, slin12 ... slin192)"))
        }
        self.format = format
        var codec: AudioCodec?
        switch format {
        case .ulaw: codec = .ulaw
        case .alaw: codec = .alaw
        case .slin(let rate):
            kind = AudioSocketKind(audioSampleRate: rate) ?? .audio8kHz
            if rate == 8000 {
                codec = .slin
            } else {
                upsampler = LinearUpsampler(outputRate: rate)
            }
        }
        let payload = max(format.bytesPer20ms, 2 * (upsampler?.maximumOutput(for: LoopScratch.samplesPerFrame) ?? 0))
        frame = .allocate(byteCount: 4 + payload, alignment: 16)
        let uuid: CallUUID
        if let known = uriUUID ?? start.callUUID {
            uuid = known
        } else {
            uuid = CallUUID.random()
            session.log.info("WebSocket media call without uuid= in its URI or AVR_UUID (channel \(start.channel ?? "?")): "
                + "using \(uuid)")
        }
        session.callerIdentified(uuid)
        // After the UUID, so the line carries it; no audio has been read in between.
        if !session.ended { session.callerCodecKnown(codec, name: format.description) }
    }

    // MARK: To Asterisk

    /// The most bytes left unsent on the socket before frames stop (about a hundred μ-law frames).
    private static let maximumPendingBytes = 16 * 1024

    func mayWrite(at now: UInt64) -> Bool {
        !closeSent && stream.pendingWriteBytes <= Self.maximumPendingBytes
            && (sendsAhead ? channel.mayWrite(at: now) : !channel.paused)
    }

    func channelNearlyDrained(at now: UInt64) -> Bool {
        channel.nearlyDrained(at: now)
    }

    func channelHeldSamples(at now: UInt64) -> Int {
        // 125 µs a sample at 8 kHz.
        sendsAhead ? Int(channel.held(at: now) / 125_000) : 0
    }

    func sendAgentFrame(_ samples: UnsafeMutableBufferPointer<Int16>) -> Bool {
        guard let format, !closeSent else { return false }
        // Its queue is full (MEDIA_XOFF), or it is not reading: drop rather than queue (when
        // the channel paces, the session asks `mayWrite` first and keeps the frame queued).
        if channel.paused || stream.pendingWriteBytes > Self.maximumPendingBytes { return false }
        var input = UnsafeBufferPointer(samples)
        if samples.count < LoopScratch.samplesPerFrame {
            if padded.baseAddress == nil {
                padded = .allocate(capacity: LoopScratch.samplesPerFrame)
            }
            padded.update(repeating: 0)
            _ = padded.update(fromContentsOf: samples)
            input = UnsafeBufferPointer(padded)
        }
        let body = UnsafeMutableRawBufferPointer(rebasing: frame[4...])
        let length: Int
        switch format {
        case .ulaw:
            AudioCodec.ulaw.encode(input, into: body)
            length = input.count
        case .alaw:
            AudioCodec.alaw.encode(input, into: body)
            length = input.count
        case .slin(8000):
            AudioCodec.slin.encode(input, into: body)
            length = 2 * input.count
        case .slin:
            length = upsampler!.process(input, into: body)
        }
        // 160 samples are always more than 125 bytes and less than 64 KiB: a 4-byte header.
        let header = WebSocketFrameEncoder.writeServerHeader(opcode: .binary, payloadLength: length, into: frame)
        assert(header == 4)
        stream.write(UnsafeRawBufferPointer(rebasing: frame[0..<(4 + length)]))
        if sendsAhead { channel.sent(at: stream.loop.nanoseconds) }
        return true
    }

    func agentAudioFlushed() {
        guard format != nil else { return }
        send(.flushMedia)
        channel.flushed(at: stream.loop.nanoseconds)
    }

    func close(hangup: Bool) {
        guard !stream.isClosing else { return }
        if peerGone { return stream.close() }
        if hangup && format != nil { send(.hangup) }
        sendClose(.normalClosure)
        stream.closeAfterFlush()
    }

    private func send(_ command: MediaCommand) {
        guard !closeSent, !stream.isClosing else { return }
        var message: [UInt8] = []
        command.encoded(controlFormat).withUnsafeBytes {
            WebSocketFrameEncoder.appendServerFrame(opcode: .text, payload: $0, to: &message)
        }
        stream.write(message)
    }

    private func sendClose(_ code: WebSocketCloseCode) {
        guard !closeSent, !stream.isClosing else { return }
        closeSent = true
        var message: [UInt8] = []
        WebSocketFrameEncoder.appendServerClose(code: code, to: &message)
        stream.write(message)
    }
}
