import AVRProtocol

/// What one delivery of a stream produced, for comparing split against whole delivery.
private enum AudioSocketEvent: Equatable {
    case frame(AudioSocketFrame, payload: [UInt8])
    case error(AudioSocketError)
}

/// The AudioSocket decoder driving the connection state machine, as the server's connection
/// handler does: decode after every read, act on each frame, close on the first error.
/// Invariants: each frame re-encodes to exactly the bytes it was decoded from; split and
/// whole delivery give the same frames and the same error; the state machine returns exactly
/// one `.hangup`, and nothing but `.ignore` after it.
func fuzzAudioSocket(_ data: UnsafeRawBufferPointer) {
    let input = SplitInput(data)
    // Flags pick a smaller payload limit sometimes, so the limit check runs on short inputs.
    let limit = input.flags & 0x1 != 0 ? 16 + Int((input.flags >> 1) & 0x3) * 100 : AudioSocketDecoder.defaultMaximumPayloadLength
    let split = run(input, chunks: input.chunks, limit: limit)
    let whole = run(input, chunks: input.whole, limit: limit)
    require(split == whole, "split delivery \(split.count) events differs from whole \(whole.count)")
    // The in-place reader the call path uses gives the same as the decoder, split or whole.
    require(read(input, chunks: input.chunks, limit: limit) == split, "the frame reader differs from the decoder (split)")
    require(read(input, chunks: input.whole, limit: limit) == split, "the frame reader differs from the decoder (whole)")
}

/// `AudioSocketFrameReader` on the same reads; it never keeps more than one incomplete message.
private func read(_ input: SplitInput, chunks: [Range<Int>], limit: Int) -> [AudioSocketEvent] {
    var reader = AudioSocketFrameReader(maximumPayloadLength: limit)
    var events: [AudioSocketEvent] = []
    for range in chunks {
        do throws(AudioSocketError) {
            try reader.read(input.chunk(range)) { frame, payload in
                events.append(.frame(frame, payload: Array(payload)))
                return true
            }
        } catch {
            events.append(.error(error))
            return events
        }
        require(reader.bufferedBytes < 3 + limit, "the reader kept more than one incomplete message")
    }
    return events
}

private func run(_ input: SplitInput, chunks: [Range<Int>], limit: Int) -> [AudioSocketEvent] {
    var decoder = AudioSocketDecoder(maximumPayloadLength: limit)
    var machine = AudioSocketConnectionStateMachine()
    var buffer = ByteBuffer()
    var events: [AudioSocketEvent] = []
    var hangups = 0
    var consumed = 0 // stream offset of the next undecoded message
    var appended = 0

    func act(_ action: AudioSocketConnectionStateMachine.Action) {
        if case .hangup = action { hangups += 1 }
        require(hangups <= 1, "a second hangup action")
        if hangups == 1, machine.state != .closed { require(false, "hangup without closing") }
    }

    // Flag bit 3: deliver the next read while an audio payload is still pending in the
    // buffer (the decoder allows appending then; compaction must keep the payload intact).
    let appendMidFrame = input.flags & 0x8 != 0
    var next = 0
    func appendNext() -> Bool {
        guard next < chunks.count else { return false }
        buffer.append(input.chunk(chunks[next]))
        appended += chunks[next].count
        next += 1
        return true
    }
    reading: while true {
        let frame: AudioSocketFrame?
        do throws(AudioSocketError) {
            frame = try decoder.decode(&buffer)
        } catch {
            events.append(.error(error))
            act(machine.receivedMalformedBytes(error))
            break reading
        }
        guard let frame else {
            if appendNext() { continue reading }
            break reading
        }
        let (encoded, payload) = reencode(frame, buffer: buffer, stream: input.stream, at: consumed)
        require(consumed + encoded.count <= appended, "decoded past the bytes given")
        require(encoded.elementsEqual(input.stream[consumed..<(consumed + encoded.count)]),
                "frame \(frame) does not re-encode to its bytes")
        consumed += encoded.count
        if appendMidFrame, case .audio(let audio) = frame, appendNext() {
            let after = audio.withPayload(in: buffer) { Array($0) }
            require(after == payload, "appending moved the pending audio payload")
        }
        events.append(.frame(frame, payload: payload))
        let before = machine.state
        let action = machine.receivedFrame(frame)
        if before == .closed { require(action == .ignore, "action after close") }
        act(action)
    }
    act(machine.socketClosed())
    require(hangups == 1, "no hangup action at the end")
    require(machine.receivedFrame(.hangup) == .ignore, "frame after close not ignored")
    return events
}

/// The wire bytes of `frame`; audio payloads are read from the buffer in place. A hangup's
/// payload is ignored by the decoder, so its bytes are taken from the stream.
private func reencode(_ frame: AudioSocketFrame, buffer: ByteBuffer,
                      stream: UnsafeRawBufferPointer, at offset: Int) -> ([UInt8], [UInt8]) {
    var out: [UInt8] = []
    var payload: [UInt8] = []
    switch frame {
    case .hangup:
        require(stream[offset] == 0x00, "hangup from a non-0x00 kind")
        let length = Int(stream[offset + 1]) << 8 | Int(stream[offset + 2])
        out = Array(stream[offset..<(offset + 3 + length)])
    case .uuid(let uuid):
        uuid.bytes.withUnsafeBytes { AudioSocketEncoder.appendFrame(kind: .uuid, payload: $0, to: &out) }
    case .dtmf(let digit):
        [digit.ascii].withUnsafeBytes { AudioSocketEncoder.appendFrame(kind: .dtmf, payload: $0, to: &out) }
    case .invalidDTMF(let byte):
        require(DTMFDigit(ascii: byte) == nil, "a valid key reported as invalid")
        [byte].withUnsafeBytes { AudioSocketEncoder.appendFrame(kind: .dtmf, payload: $0, to: &out) }
    case .error(let code):
        code.withUnsafeBytes { AudioSocketEncoder.appendFrame(kind: .error, payload: $0, to: &out) }
    case .audio(let audio):
        require(audio.kind.isAudio && audio.payloadLength > 0, "bad audio frame \(audio)")
        if audio.kind != .audio8kHz { require(audio.payloadLength % 2 == 0, "odd 16-bit audio") }
        require(audio.sampleRate > 0, "no sample rate")
        payload = audio.withPayload(in: buffer) { Array($0) }
        require(payload.count == audio.payloadLength, "payload length")
        payload.withUnsafeBytes { AudioSocketEncoder.appendFrame(kind: audio.kind, payload: $0, to: &out) }
    }
    return (out, payload)
}
