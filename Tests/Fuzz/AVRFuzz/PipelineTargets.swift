@testable import AVRProtocol

// MARK: - Pipeline parsers

let pipelineTargets: [FuzzTarget] = [
    FuzzTarget(name: "llm-reply", run: fuzzLLMReplyParser),
    FuzzTarget(name: "sentence-splitter", run: fuzzSentenceSplitter),
    FuzzTarget(name: "tts-audio", run: fuzzTTSAudioDecoder),
    FuzzTarget(name: "asr-transcript", run: fuzzASRTranscriptAssembler),
]

/// Adjacent `.text` events merged (plain text may be cut differently for different splits).
private func mergedText(_ events: [LLMReplyEvent]) -> [LLMReplyEvent] {
    var merged: [LLMReplyEvent] = []
    for event in events {
        if case .text(let more) = event, case .text(let text)? = merged.last {
            merged[merged.count - 1] = .text(text + more)
        } else {
            merged.append(event)
        }
    }
    return merged
}

private func parseLLM(_ stream: UnsafeRawBufferPointer, _ chunks: [Range<Int>]) -> [LLMReplyEvent] {
    var parser = LLMReplyParser()
    var events: [LLMReplyEvent] = []
    for range in chunks { events += parser.append(UnsafeRawBufferPointer(rebasing: stream[range])) }
    return events + parser.finish()
}

/// The LLM reply parser. Flag bit 0 clear: the stream as it is, split and whole.
/// Invariants: the same events (text merged) however the stream is cut; a valid UTF-8 body
/// that does not start (after whitespace) with `{`, `d` or 0xEF (a byte order mark is
/// skipped) is returned as exactly its text.
/// Flag bit 0 set: the stream's bytes, cut at each 0x00, become `{"type":"text","content":…}`
/// objects serialised by `JSONValue` (so every escape the serialiser writes is exercised),
/// with whitespace between them as flag bits 1–2 say; parsed cut as the split says, the
/// events must be exactly those texts in order.
func fuzzLLMReplyParser(_ data: UnsafeRawBufferPointer) {
    let input = SplitInput(data)
    if input.flags & 1 == 0 {
        let split = mergedText(parseLLM(input.stream, input.chunks))
        let whole = mergedText(parseLLM(input.stream, input.whole))
        require(split == whole, "split \(split) != whole \(whole)")
        let bytes = Array(input.stream)
        if let first = bytes.first(where: { !($0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 || $0 == 0x0B || $0 == 0x0C) }),
            first != UInt8(ascii: "{"), first != UInt8(ascii: "d"), first != 0xEF,  // 0xEF: maybe a byte order mark
            UTF8Validator.isValid(input.stream)
        {
            let start = bytes.firstIndex(of: first)!
            require(whole == [.text(String(decoding: bytes[start...], as: UTF8.self))], "plain text altered: \(whole)")
        }
        return
    }
    let texts = input.stream.split(separator: 0, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
    let separator: [UInt8] = [[], [0x0A], [0x20, 0x0D, 0x0A, 0x09], [UInt8(ascii: ",")]][Int(input.flags >> 1 & 3)]
    var body: [UInt8] = []
    for text in texts {
        JSONValue.object(["type": "text", "content": .string(text)]).serialize(into: &body)
        body += separator
    }
    // Cut the body with the split's chunk lengths, cycled.
    let lengths = input.chunks.map(\.count).filter { $0 > 0 }
    var ranges: [Range<Int>] = []
    var offset = 0
    var turn = 0
    while offset < body.count {
        let length = lengths.isEmpty ? body.count : lengths[turn % lengths.count]
        ranges.append(offset..<min(body.count, offset + length))
        offset += length
        turn += 1
    }
    let events = body.withUnsafeBytes { parseLLM($0, ranges) }
    require(events == texts.map { .text($0) }, "serialised texts came back as \(events)")
}

/// The sentence splitter fed the stream's text (invalid UTF-8 replaced) cut at the split's
/// boundaries (moved to scalar boundaries). Invariants: the same sentences split and whole;
/// every sentence trimmed, without double spaces, line breaks, markdown marks, `【` or
/// emoji, and with a letter or digit.
func fuzzSentenceSplitter(_ data: UnsafeRawBufferPointer) {
    let input = SplitInput(data)
    let scalars = Array(String(decoding: input.stream, as: UTF8.self).unicodeScalars)
    func pieces(_ chunks: [Range<Int>]) -> [String] {
        // Byte ranges of the stream → the same proportions of the scalar array.
        var result: [String] = []
        var start = 0
        for range in chunks {
            let end = input.stream.isEmpty ? 0 : min(scalars.count, range.upperBound * scalars.count / input.stream.count)
            var view = String.UnicodeScalarView()
            view.append(contentsOf: scalars[start..<max(start, end)])
            result.append(String(view))
            start = max(start, end)
        }
        var view = String.UnicodeScalarView()
        view.append(contentsOf: scalars[start...])
        result.append(String(view))
        return result
    }
    func run(_ pieces: [String]) -> [String] {
        var splitter = SentenceSplitter()
        var sentences: [String] = []
        for piece in pieces { sentences += splitter.append(piece) }
        return sentences + splitter.finish()
    }
    let split = run(pieces(input.chunks))
    let whole = run(pieces(input.whole))
    require(split == whole, "split \(split) != whole \(whole)")
    for sentence in whole {
        let view = Array(sentence.unicodeScalars)
        require(view.first != " " && view.last != " ", "untrimmed sentence \(sentence)")
        require(!sentence.contains("  "), "double space in \(sentence)")
        require(view.contains { $0.properties.isAlphabetic || $0.properties.numericType != nil }, "sentence without a letter or digit: \(sentence)")
        for scalar in view {
            switch scalar.value {
            case 0x0A, 0x0D, 0x2028, 0x2029: require(false, "line break in \(sentence)")
            case 0x2A, 0x5F, 0x23, 0x60: require(false, "markdown mark in \(sentence)")
            case 0x3010: require(false, "citation bracket in \(sentence)")
            case 0x1F000...0x1FAFF, 0xFE0F, 0x200D: require(false, "emoji in \(sentence)")
            default: break
            }
        }
    }
}

private struct TTSOutcome: Equatable {
    var pcm: [UInt8] = []
    var error: TTSAudioError?
    var dropped = 0
    var wav = false
}

private func decodeTTS(_ stream: UnsafeRawBufferPointer, _ chunks: [Range<Int>]) -> TTSOutcome {
    var decoder = TTSAudioDecoder()
    var outcome = TTSOutcome()
    for range in chunks {
        do throws(TTSAudioError) {
            try decoder.append(UnsafeRawBufferPointer(rebasing: stream[range])) { piece in
                require(piece.count % 2 == 0, "odd piece of \(piece.count) bytes")
                outcome.pcm += piece
            }
        } catch {
            outcome.error = error
            break
        }
    }
    outcome.wav = decoder.isWAV
    outcome.dropped = decoder.finish()
    return outcome
}

/// The TTS decoder. Flag bit 0 set: a WAV header is put before the stream (flag bits 1–2
/// pick 8 kHz mono PCM with a streamed size, with the stream's exact size, 16 kHz, or
/// stereo), so the samples path is reached. Invariants: every piece whole samples; the same
/// samples, error and dropped count split and whole; a raw body comes out as itself minus a
/// dangling byte; a good streamed WAV as its payload minus a dangling byte.
func fuzzTTSAudioDecoder(_ data: UnsafeRawBufferPointer) {
    let input = SplitInput(data)
    var body: [UInt8] = []
    let withHeader = input.flags & 1 != 0
    let variant = Int(input.flags >> 1 & 3)
    if withHeader {
        func le16(_ v: Int) -> [UInt8] { [UInt8(v & 0xFF), UInt8(v >> 8 & 0xFF)] }
        func le32(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8(v >> (8 * $0) & 0xFF) } }
        let rate: UInt32 = variant == 2 ? 16000 : 8000
        let channels = variant == 3 ? 2 : 1
        let dataSize: UInt32 = variant == 1 ? UInt32(input.stream.count) : 0xFFFF_FFFF
        body = Array("RIFF".utf8) + le32(0) + Array("WAVEfmt ".utf8) + le32(16) + le16(1) + le16(channels) + le32(rate)
            + le32(rate * UInt32(channels * 2)) + le16(channels * 2) + le16(16) + Array("data".utf8) + le32(dataSize)
    }
    let headerLength = body.count
    body += input.stream
    // The split's boundaries, shifted past the header (which arrives as one more piece).
    var chunks: [Range<Int>] = headerLength > 0 ? [0..<headerLength] : []
    chunks += input.chunks.map { ($0.lowerBound + headerLength)..<($0.upperBound + headerLength) }
    let (split, whole) = body.withUnsafeBytes { ($0.isEmpty ? TTSOutcome() : decodeTTS($0, chunks), decodeTTS($0, $0.isEmpty ? [] : [0..<$0.count])) }
    require(split == whole, "split \(split.pcm.count) B \(String(describing: split.error)) != whole \(whole.pcm.count) B \(String(describing: whole.error))")
    if !withHeader && !input.stream.starts(with: "RIFF".utf8) {
        require(whole.error == nil && !whole.wav, "raw body misread")
        let expectedDropped = input.stream.count < 4 && "RIFF".utf8.starts(with: input.stream) ? input.stream.count : input.stream.count % 2
        require(whole.dropped == expectedDropped, "raw dropped \(whole.dropped)")
        require(whole.pcm.elementsEqual(input.stream.prefix(input.stream.count - whole.dropped)), "raw samples altered")
    }
    if withHeader && variant <= 1 {
        require(whole.error == nil && whole.wav, "good WAV rejected: \(String(describing: whole.error))")
        require(whole.pcm.elementsEqual(input.stream.prefix(input.stream.count & ~1)), "WAV samples altered")
        require(whole.dropped == input.stream.count % 2, "WAV dropped \(whole.dropped)")
    }
    if withHeader && variant >= 2 { require(whole.error != nil, "16 kHz or stereo WAV accepted") }
}

private enum ASROutput: Equatable {
    case turn(String)
    case error(String)
}

/// The ASR assembler. The split's pieces arrive either at one instant (flag bit 0 clear:
/// one write cut by TCP, must equal the whole stream at once) or spaced by gaps taken from
/// the flags (a turn may close between pieces). Invariants: split at one instant = whole;
/// every turn non-empty, trimmed, without double spaces or control characters, and already
/// clean (cleaning it again changes nothing); `deadline` is nil once finished.
func fuzzASRTranscriptAssembler(_ data: UnsafeRawBufferPointer) {
    let input = SplitInput(data)
    let ms: UInt64 = 1_000_000
    let spaced = input.flags & 1 != 0
    let gap: UInt64 = [0, 4, 150, 400, 5, 299, 300, 1000][Int(input.flags >> 1 & 7)] * ms
    func run(_ chunks: [Range<Int>], spaced: Bool) -> [ASROutput] {
        var assembler = ASRTranscriptAssembler()
        var output: [ASROutput] = []
        var now: UInt64 = 1_000 * ms
        func drain(_ at: UInt64) {
            while let turn = assembler.takeTurn(at: at) { output.append(.turn(turn)) }
            while let error = assembler.takeError() { output.append(.error(error)) }
        }
        for range in chunks {
            if let deadline = assembler.deadline, deadline <= now { drain(deadline) }
            assembler.append(UnsafeRawBufferPointer(rebasing: input.stream[range]), at: now)
            drain(now)
            if spaced { now += gap }
        }
        if let last = assembler.finish() { output.append(.turn(last)) }
        drain(now)
        require(assembler.deadline == nil, "deadline after finish")
        return output
    }
    let split = run(input.chunks, spaced: spaced)
    if !spaced {
        let whole = run(input.whole, spaced: false)
        require(split == whole, "split \(split) != whole \(whole)")
    }
    for case .turn(let turn) in split {
        require(!turn.isEmpty, "empty turn")
        require(turn.first != " " && turn.last != " ", "untrimmed turn")
        require(!turn.contains("  "), "double space in a turn")
        require(!turn.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F }, "control character in a turn")
        require(ASRTranscriptAssembler.clean(turn) == turn, "turn not clean: \(turn)")
    }
}
