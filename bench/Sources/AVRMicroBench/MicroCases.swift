import AVRCore
import AVRProtocol

/// Each case runs the per-frame operation `n` times on realistic 20 ms frames and returns a
/// value derived from the output.
enum MicroCases {
    static let pcm: [UInt8] = (0..<160).flatMap { index -> [UInt8] in
        let sample = Int16(truncatingIfNeeded: (index * 997) % 12000 - 6000)
        return [UInt8(truncatingIfNeeded: sample), UInt8(truncatingIfNeeded: sample >> 8)]
    }
    static let audioSocketMessage: [UInt8] = [0x10, 0x01, 0x40] + pcm
    static let ulaw: [UInt8] = (0..<160).map { G711.muLaw(Int16(truncatingIfNeeded: ($0 * 997) % 12000 - 6000)) }
    static let stsJSON: [UInt8] = Array(#"{"type":"audio","audio":""#.utf8) + Array(Base64.encodeToString(pcm).utf8) + Array(#""}"#.utf8)

    static let all: [(String, @Sendable (Int) -> Int)] = [
        ("audiosocket_decode", audioSocketDecode),
        ("audiosocket_read", audioSocketRead),
        ("audiosocket_decode_split", audioSocketDecodeSplit),
        ("audiosocket_read_split", audioSocketReadSplit),
        ("media_ws_read", mediaWebSocketRead),
        ("sts_audio_encode_masked", stsAudioEncode),
        ("sts_inbound_fast_path", stsInbound),
        ("sts_read_buffered", stsReadBuffered),
        ("sts_read_in_place", stsReadInPlace),
        ("g711_ulaw_decode", g711Decode),
        ("g711_ulaw_encode", g711Encode),
        ("playback_tick", playbackTick),
        ("playout_tick", playoutTick),
        ("playout_echo_prompt", playoutEchoPrompt),
        ("metrics_per_frame", metricsPerFrame),
        ("vad_caller_frame", vadCallerFrame),
        ("vad_frame_with_echo", vadFrameWithEcho),
    ]

    /// 50 frames (1 s) of a varying test signal: harmonics of a moving pitch under a syllable
    /// envelope, plus noise, so the detector takes its speech and non-speech paths.
    static let vadFrames: [Int16] = (0..<8000).map { index in
        let t = Float(index) / 8000
        let envelope: Float = index % 4000 < 2400 ? 1 : 0.02
        var value: Float = 0
        for harmonic in 1...12 {
            let phase = Float(harmonic) * (130 + 20 * t) * t
            value += 2000 / Float(harmonic) * (phase - phase.rounded(.down) < 0.5 ? 1 : -1)
        }
        let noise = Float(Int((index &* 1_103_515_245 &+ 12345) >> 16 & 0xFF) - 128)
        return Int16(clamping: Int(value * envelope + noise))
    }

    /// One 20 ms caller frame through the barge-in detector (FFT, noise tracking, likelihood
    /// ratio, hangover) with no agent audio.
    static func vadCallerFrame(_ n: Int) -> Int {
        var detector = BargeInDetector(configuration: VADConfiguration())
        var total = 0
        vadFrames.withUnsafeBufferPointer { all in
            for index in 0..<n {
                let start = (index % 50) * 160
                if detector.callerFrame(UnsafeBufferPointer(rebasing: all[start..<start + 160])) != nil { total &+= 1 }
            }
        }
        return total &+ detector.analysedFrames
    }

    /// A call while the agent speaks: the played frame (echo reference) and the caller frame.
    static func vadFrameWithEcho(_ n: Int) -> Int {
        var detector = BargeInDetector(configuration: VADConfiguration())
        var total = 0
        vadFrames.withUnsafeBufferPointer { all in
            for index in 0..<n {
                let start = (index % 50) * 160, agent = ((index + 17) % 50) * 160
                detector.agentPlayed(UnsafeBufferPointer(rebasing: all[agent..<agent + 160]))
                if detector.callerFrame(UnsafeBufferPointer(rebasing: all[start..<start + 160])) != nil { total &+= 1 }
            }
        }
        return total &+ detector.analysedFrames
    }

    /// What the metrics add to one caller frame and one playback frame: the frame tallies,
    /// the caller's inter-arrival jitter into this loop's histogram, and the tick's flush
    /// into the counters, here once every 4 frames (a real tick flushes once for all its calls).
    static func metricsPerFrame(_ n: Int) -> Int {
        let metrics = LoopMetrics(server: ServerMetrics(), loopIndex: 0)
        var jitter = ArrivalJitter()
        var now: UInt64 = 1_000_000
        for index in 0..<n {
            now &+= 20_000_000 &+ UInt64(index & 7) &* 100_000
            metrics.framesReceived += 1
            if let deviation = jitter.observe(at: now, duration: 20_000_000) { metrics.recordJitter(nanoseconds: deviation) }
            metrics.framesSent += 1
            if index & 3 == 3 { metrics.flush() }
        }
        metrics.flush()
        return Int(truncatingIfNeeded: now)
    }

    /// Bytes in from the socket, one 0x10 frame out of the decoder, payload read in place.
    static func audioSocketDecode(_ n: Int) -> Int {
        var buffer = ByteBuffer(capacity: 4096)
        var decoder = AudioSocketDecoder()
        var total = 0
        audioSocketMessage.withUnsafeBytes { message in
            for _ in 0..<n {
                buffer.append(message)
                while let frame = try? decoder.decode(&buffer) {
                    if case .audio(let audio) = frame { total &+= audio.withPayload(in: buffer) { Int($0[7]) } }
                }
            }
        }
        copiedPerFrame["audiosocket_decode"] = Double(audioSocketMessage.count)
        return total
    }

    /// Bytes copied out of the loop's read buffer per frame, by case (printed next to the time).
    nonisolated(unsafe) static var copiedPerFrame: [String: Double] = [:]

    /// The receive path as `CallSession` runs it: each read decoded in place by
    /// `AudioSocketFrameReader`, one whole 0x10 frame per read as Asterisk sends them.
    static func audioSocketRead(_ n: Int) -> Int {
        var reader = AudioSocketFrameReader()
        var total = 0
        audioSocketMessage.withUnsafeBytes { message in
            for _ in 0..<n {
                try? reader.read(message) { frame, payload in
                    if case .audio = frame { total &+= Int(payload[7]) }
                    return true
                }
            }
        }
        copiedPerFrame["audiosocket_read"] = Double(reader.copiedBytes) / Double(n)
        return total
    }

    /// The WebSocket channel's frame for the same audio: the 320 bytes as one masked binary
    /// frame (4-byte header, 4-byte key), as Asterisk sends a slin frame.
    static let mediaWebSocketFrame: [UInt8] = {
        var frame: [UInt8] = []
        pcm.withUnsafeBytes {
            WebSocketFrameEncoder.appendFrame(opcode: .binary, payload: $0, maskingKey: WebSocketMaskingKey(0x37, 0xA1, 0x5C, 0xE2),
                                              to: &frame)
        }
        return frame
    }()

    /// The `/media` receive path as `WebSocketMediaLeg` runs it, to compare with
    /// `audiosocket_read`: each read (one whole frame) decoded in place by the server-role
    /// reader, the payload unmasked where it lies and delivered as a binary message. The
    /// read's bytes are unmasked in place each time, so the payload alternates between the
    /// plain and the masked audio; the work is the same either way.
    static func mediaWebSocketRead(_ n: Int) -> Int {
        var reader = WebSocketMessageReader(maxMessageSize: MediaControlParser.maxLength, role: .server)
        var read = mediaWebSocketFrame
        var total = 0
        read.withUnsafeMutableBytes { bytes in
            let view = UnsafeRawBufferPointer(bytes)
            for _ in 0..<n {
                try? reader.read(view) { event in
                    if case .binary(let payload) = event { total &+= Int(payload[7]) }
                }
            }
        }
        copiedPerFrame["media_ws_read"] = Double(reader.frames.copiedBytes) / Double(n)
        return total
    }

    /// 16 frames back to back, read in 500-byte pieces (frames straddle reads).
    static let splitStream: [UInt8] = Array((0..<16).map { _ in audioSocketMessage }.joined())
    static let splitReads: [Range<Int>] = stride(from: 0, to: splitStream.count, by: 500).map {
        $0..<min(splitStream.count, $0 + 500)
    }

    /// The previous receive path on reads that split frames: every read appended to the
    /// connection's buffer, then decoded (copies counted: the appended bytes).
    static func audioSocketDecodeSplit(_ n: Int) -> Int {
        var buffer = ByteBuffer(capacity: 4096)
        var decoder = AudioSocketDecoder()
        var total = 0
        var frames = 0
        var appended = 0
        splitStream.withUnsafeBytes { stream in
            while frames < n {
                for range in splitReads {
                    buffer.append(UnsafeRawBufferPointer(rebasing: stream[range]))
                    appended &+= range.count
                    while let frame = try? decoder.decode(&buffer) {
                        if case .audio(let audio) = frame {
                            frames += 1
                            total &+= audio.withPayload(in: buffer) { Int($0[7]) }
                        }
                    }
                }
            }
        }
        copiedPerFrame["audiosocket_decode_split"] = Double(appended) / Double(frames)
        return total
    }

    /// The new receive path on the same split reads: only frames that straddle reads are copied.
    static func audioSocketReadSplit(_ n: Int) -> Int {
        var reader = AudioSocketFrameReader()
        var total = 0
        var frames = 0
        splitStream.withUnsafeBytes { stream in
            while frames < n {
                for range in splitReads {
                    try? reader.read(UnsafeRawBufferPointer(rebasing: stream[range])) { frame, payload in
                        if case .audio = frame {
                            frames += 1
                            total &+= Int(payload[7])
                        }
                        return true
                    }
                }
            }
        }
        copiedPerFrame["audiosocket_read_split"] = Double(reader.copiedBytes) / Double(frames)
        return total
    }

    /// 320 bytes of PCM → one masked text frame `{"type":"audio","audio":"..."}` (466 bytes).
    static func stsAudioEncode(_ n: Int) -> Int {
        var frame: [UInt8] = []
        frame.reserveCapacity(512)
        var keys = WebSocketMaskingKeySource()
        var total = 0
        pcm.withUnsafeBytes { pcm in
            for _ in 0..<n {
                frame.removeAll(keepingCapacity: true)
                STSAudioMessageEncoder.appendFrame(pcm: pcm, maskingKey: keys.next(), to: &frame)
                total &+= Int(frame[100])
            }
        }
        return total
    }

    /// An STS audio message (unmasked JSON) → fast-path scan → base64 → samples queued →
    /// one frame taken out (so the queue stays bounded, as in a call).
    static func stsInbound(_ n: Int) -> Int {
        var queue = PlaybackQueue()
        var pcm: [UInt8] = []
        var samples = [Int16](repeating: 0, count: 160)
        var total = 0
        stsJSON.withUnsafeBytes { payload in
            for _ in 0..<n {
                if case .audio(let range) = STSInboundMessage.parse(payload) {
                    // As CallSession does: decode into a reused buffer, then one bulk append.
                    pcm.removeAll(keepingCapacity: true)
                    try? Base64.decode(UnsafeRawBufferPointer(rebasing: payload[range]), appendingTo: &pcm)
                    pcm.withUnsafeBytes { queue.append(pcmLittleEndian: $0) }
                }
                samples.withUnsafeMutableBufferPointer { _ = queue.nextFrame(into: $0) }
                total &+= Int(samples[3])
            }
        }
        return total
    }

    /// One read from the STS socket holding one unmasked WebSocket text frame with an audio
    /// message (468 bytes).
    static let stsFrame: [UInt8] = [0x81, 126, UInt8(stsJSON.count >> 8), UInt8(stsJSON.count & 0xFF)] + stsJSON

    /// The STS read path as it was: the read appended to the connection's buffer, the frame
    /// decoded from there, base64 decoded into a scratch buffer, then appended to the queue
    /// (two copies of the frame's worth of bytes before the samples are queued).
    static func stsReadBuffered(_ n: Int) -> Int {
        var inbound = ByteBuffer()
        var reader = WebSocketMessageReader()
        var queue = PlaybackQueue()
        var pcm: [UInt8] = []
        var samples = [Int16](repeating: 0, count: 160)
        var total = 0
        stsFrame.withUnsafeBytes { read in
            for _ in 0..<n {
                inbound.append(read)
                try? reader.read(&inbound) { event in
                    guard case .text(let payload) = event, case .audio(let range) = STSInboundMessage.parse(payload) else { return }
                    pcm.removeAll(keepingCapacity: true)
                    try? Base64.decode(UnsafeRawBufferPointer(rebasing: payload[range]), appendingTo: &pcm)
                    pcm.withUnsafeBytes { queue.append(pcmLittleEndian: $0) }
                }
                samples.withUnsafeMutableBufferPointer { _ = queue.nextFrame(into: $0) }
                total &+= Int(samples[3])
            }
        }
        return total
    }

    /// The STS read path now: the frame decoded where the read lies, the base64 decoded
    /// straight into the queue's ring (no copy of the frame, no intermediate buffer).
    static func stsReadInPlace(_ n: Int) -> Int {
        var reader = WebSocketMessageReader()
        var queue = PlaybackQueue()
        var samples = [Int16](repeating: 0, count: 160)
        var total = 0
        stsFrame.withUnsafeBytes { read in
            for _ in 0..<n {
                try? reader.read(read) { event in
                    guard case .text(let payload) = event, case .audio(let range) = STSInboundMessage.parse(payload) else { return }
                    try? queue.append(base64LittleEndianPCM: UnsafeRawBufferPointer(rebasing: payload[range]))
                }
                samples.withUnsafeMutableBufferPointer { _ = queue.nextFrame(into: $0) }
                total &+= Int(samples[3])
            }
        }
        return total + reader.frames.copiedBytes
    }

    static func g711Decode(_ n: Int) -> Int {
        var samples = [Int16](repeating: 0, count: 160)
        var total = 0
        ulaw.withUnsafeBytes { payload in
            samples.withUnsafeMutableBufferPointer { output in
                for _ in 0..<n {
                    total &+= G711.decodeMuLaw(payload, into: output)
                    total &+= Int(output[5])
                }
            }
        }
        return total
    }

    static func g711Encode(_ n: Int) -> Int {
        let samples: [Int16] = (0..<160).map { Int16(truncatingIfNeeded: ($0 * 997) % 12000 - 6000) }
        var output = [UInt8](repeating: 0, count: 160)
        var total = 0
        samples.withUnsafeBufferPointer { input in
            output.withUnsafeMutableBytes { out in
                for _ in 0..<n {
                    AudioCodec.ulaw.encode(input, into: out)
                    total &+= Int(out[9])
                }
            }
        }
        return total
    }

    /// `playback_tick` through the `PlayoutController` a call uses: a queue ahead (the STS sends
    /// a second at a time), one frame per 20 ms tick, encoded as a slin 0x10 message.
    static func playoutTick(_ n: Int) -> Int {
        var playout = PlayoutController(queue: PlaybackQueue())
        var samples = [Int16](repeating: 0, count: 160)
        var message = [UInt8](repeating: 0, count: 323)
        var total = 0
        var now: UInt64 = 0
        pcm.withUnsafeBytes { pcm in
            samples.withUnsafeMutableBufferPointer { frame in
                message.withUnsafeMutableBytes { out in
                    for _ in 0..<n {
                        if playout.queuedSamples < 160 { for _ in 0..<50 { _ = playout.append(pcmLittleEndian: pcm, now: now) } }
                        now &+= 20_000_000
                        var count = 160
                        switch playout.tick(at: now, into: frame, streamOpen: true) {
                        case .speech(let samples): count = samples
                        case .silence, .nothing: frame.update(repeating: 0)
                        }
                        total &+= AudioSocketEncoder.encodeAudioMessage(samples: UnsafeBufferPointer(rebasing: frame[0..<count]), into: out)
                    }
                }
            }
        }
        return total
    }

    /// The echo path through the `PlayoutController`: one 20 ms frame arrives, goes out at once
    /// (a prompt frame), and the call's tick in between finds the queue dry and holds.
    static func playoutEchoPrompt(_ n: Int) -> Int {
        var playout = PlayoutController(queue: PlaybackQueue())
        var samples = [Int16](repeating: 0, count: 160)
        var message = [UInt8](repeating: 0, count: 323)
        var total = 0
        var now: UInt64 = 0
        pcm.withUnsafeBytes { pcm in
            samples.withUnsafeMutableBufferPointer { frame in
                message.withUnsafeMutableBytes { out in
                    for _ in 0..<n {
                        now &+= 20_000_000
                        if case .speech = playout.tick(at: now &- 500_000, into: frame, streamOpen: true) { total &+= 1 }
                        if playout.append(pcmLittleEndian: pcm, now: now).frameDue {
                            let count = playout.promptFrame(into: frame, now: now)
                            total &+= AudioSocketEncoder.encodeAudioMessage(samples: UnsafeBufferPointer(rebasing: frame[0..<count]), into: out)
                        }
                    }
                }
            }
        }
        return total
    }

    /// The 20 ms tick of one call: next frame from the queue, encoded as a slin 0x10 message.
    static func playbackTick(_ n: Int) -> Int {
        var queue = PlaybackQueue()
        var samples = [Int16](repeating: 0, count: 160)
        var message = [UInt8](repeating: 0, count: 323)
        var total = 0
        pcm.withUnsafeBytes { pcm in
            samples.withUnsafeMutableBufferPointer { frame in
                message.withUnsafeMutableBytes { out in
                    for _ in 0..<n {
                        // Refill one second at a time: the queue-append side is measured by
                        // sts_inbound_fast_path; here it adds ~1/50 of an append per frame.
                        if queue.queuedSamples < 160 { for _ in 0..<50 { queue.append(pcmLittleEndian: pcm) } }
                        if !queue.nextFrame(into: frame) { frame.update(repeating: 0) }
                        total &+= AudioSocketEncoder.encodeAudioMessage(samples: UnsafeBufferPointer(frame), into: out)
                    }
                }
            }
        }
        return total
    }
}
