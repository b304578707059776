import AVRBenchSupport
import AVRProtocol

/// A simulated caller's codec on the wire (what Asterisk would send for that channel).
enum CallerCodec: String, CaseIterable {
    /// 8 kHz signed linear: `0x10`, 320 bytes per 20 ms.
    case slin
    /// G.711 μ-law / A-law: `0x10`, 160 bytes per 20 ms.
    case ulaw, alaw
    /// 16 kHz signed linear: `0x12`, 640 bytes per 20 ms.
    case slin16

    var kind: UInt8 { self == .slin16 ? 0x12 : 0x10 }
    var samplesPerFrame: Int { self == .slin16 ? 320 : 160 }
    var payloadLength: Int { self == .ulaw || self == .alaw ? 160 : samplesPerFrame * 2 }
    var sampleRate: Double { self == .slin16 ? 16000 : 8000 }
    /// Whether echoes carry a readable stamp: 8 kHz callers do (slin as sent, G.711 decoded to
    /// slin by the server and re-encoded here); a 16 kHz caller's echo is resampled to 8 kHz,
    /// so its frames are only counted.
    var stamped: Bool { self != .slin16 }

    func append(_ sample: Int16, to output: inout [UInt8]) {
        switch self {
        case .slin, .slin16:
            output.append(UInt8(truncatingIfNeeded: sample))
            output.append(UInt8(truncatingIfNeeded: sample >> 8))
        case .ulaw: output.append(G711.muLaw(sample))
        case .alaw: output.append(G711.aLaw(sample))
        }
    }

    /// The stamp's byte base (see `FrameStamp`): near-silent codes for G.711.
    var stampBase: UInt8 {
        switch self {
        case .ulaw: 0xF0
        case .alaw: 0xD0
        case .slin, .slin16: 0x10
        }
    }

    func decode(_ code: UInt8) -> Int16 { self == .alaw ? G711.aLawDecode(code) : G711.muLawDecode(code) }
    func encode(_ sample: Int16) -> UInt8 { self == .alaw ? G711.aLaw(sample) : G711.muLaw(sample) }
}

/// What the caller says after the stamp.
enum CallerContent: String, CaseIterable {
    /// A 400 Hz tone at about −15 dBFS.
    case tone
    /// White noise over the full 16-bit range.
    case noise
    /// A full-scale 100 Hz sawtooth.
    case sawtooth
    /// Half the calls `noise`, half `sawtooth` (by call id).
    case loud
    /// A silent caller on a line: white noise at about −50 dBFS (with `--line-echo-db`, what
    /// the echo canceller sees while the agent speaks and the caller listens).
    case quiet

    func resolved(callID: UInt32) -> CallerContent {
        self == .loud ? (callID % 2 == 0 ? .noise : .sawtooth) : self
    }
}

/// The frames one (codec, content) pair sends — a small pool of messages, frame `n` using
/// `messages[n % count]` with the stamp written over its first bytes — and, per message,
/// the echo the caller must hear: the same audio as 8 kHz slin.
final class CallerAudio {
    let codec: CallerCodec
    /// Whole AudioSocket messages (3-byte header + payload).
    private(set) var messages: [[UInt8]]
    /// Per message: the payload as the server plays it back (8 kHz s16le, 320 bytes), for
    /// the byte-exact check of 8 kHz callers.
    let expectedSlin: [[UInt8]]

    init(codec: CallerCodec, content: CallerContent) {
        self.codec = codec
        let frames = CallerAudio.samples(content: content, rate: codec.sampleRate, perFrame: codec.samplesPerFrame)
        messages = frames.map { samples in
            var message = [codec.kind, UInt8(codec.payloadLength >> 8), UInt8(codec.payloadLength & 0xFF)]
            for sample in samples { codec.append(sample, to: &message) }
            return message
        }
        expectedSlin = messages.map { message in
            var slin: [UInt8] = []
            let payload = message[3...]
            switch codec {
            case .slin: slin.append(contentsOf: payload)
            case .ulaw, .alaw:
                for code in payload { CallerCodec.slin.append(codec.decode(code), to: &slin) }
            case .slin16: break
            }
            return slin
        }
    }

    /// Writes `stamp` into message `index % count` and hands the whole message to `body`.
    func withMessage(sequence: UInt32, stamp: FrameStamp?, _ body: (UnsafeRawBufferPointer) -> Void) {
        let index = Int(sequence) % messages.count
        messages[index].withUnsafeMutableBytes { bytes in
            if let stamp {
                stamp.write(into: UnsafeMutableRawBufferPointer(rebasing: bytes[AudioSocketEncoder.headerLength...]),
                            base: codec.stampBase)
            }
            body(UnsafeRawBufferPointer(bytes))
        }
    }

    /// Reads the stamp from an echoed payload. 8 kHz slin comes back as sent; a G.711 caller
    /// hears slin (the decoded samples), so the stamp's samples are re-encoded first — G.711
    /// decode then encode is exact for the stamp's codes. A G.711 payload (a server that
    /// answers in the caller's codec) is read as is.
    func stamp(in payload: UnsafeRawBufferPointer, scratch: inout [UInt8]) -> FrameStamp? {
        guard codec == .ulaw || codec == .alaw, payload.count == 320 else {
            return FrameStamp.read(from: payload, base: codec.stampBase)
        }
        scratch.removeAll(keepingCapacity: true)
        for index in 0..<FrameStamp.encodedLength {
            let sample = Int16(bitPattern: UInt16(payload[2 * index]) | UInt16(payload[2 * index + 1]) << 8)
            scratch.append(codec.encode(sample))
        }
        return scratch.withUnsafeBytes { FrameStamp.read(from: $0, base: codec.stampBase) }
    }

    /// Whether the audio after the stamp is exactly what frame `sequence` carried.
    func contentMatches(_ payload: UnsafeRawBufferPointer, sequence: UInt32) -> Bool {
        let index = Int(sequence) % messages.count
        if payload.count == 320 {
            let expected = expectedSlin[index]
            let skip = codec == .slin ? FrameStamp.encodedLength : FrameStamp.encodedLength * 2
            guard expected.count == 320 else { return false }
            return expected.withUnsafeBytes { memcmp($0.baseAddress! + skip, payload.baseAddress! + skip, 320 - skip) == 0 }
        }
        // Played back in the caller's own codec (G.711, 160 bytes).
        let message = messages[index]
        guard payload.count == message.count - AudioSocketEncoder.headerLength else { return false }
        let skip = FrameStamp.encodedLength
        return message.withUnsafeBytes {
            memcmp($0.baseAddress! + AudioSocketEncoder.headerLength + skip, payload.baseAddress! + skip, payload.count - skip) == 0
        }
    }

    /// Sample frames for `content` at `rate`: one frame when the signal repeats every frame,
    /// a pool of 16 otherwise (noise).
    static func samples(content: CallerContent, rate: Double, perFrame: Int) -> [[Int16]] {
        switch content {
        case .tone, .loud:
            // 400 Hz: a 20 ms frame holds exactly 8 periods at either rate.
            return [(0..<perFrame).map { Int16(6000 * sin(2 * Double.pi * 400 * Double($0) / rate)) }]
        case .sawtooth:
            // 100 Hz, −32768 … 32767: 2 periods per frame.
            let period = Int(rate / 100)
            return [(0..<perFrame).map { Int16(truncatingIfNeeded: -32768 + ($0 % period) * 65535 / (period - 1)) }]
        case .noise, .quiet:
            var state: UInt64 = 0x9E37_79B9_7F4A_7C15
            // Uniform over ±179 has an RMS of 179/√3 ≈ 103, −50 dBFS.
            let shift: UInt64 = content == .quiet ? 55 : 48
            return (0..<16).map { _ in
                (0..<perFrame).map { _ in
                    // xorshift64*: uniform over the whole Int16 range (quiet: over ±256, scaled to ±179).
                    state ^= state >> 12
                    state ^= state << 25
                    state ^= state >> 27
                    let value = Int16(truncatingIfNeeded: Int64(bitPattern: state &* 0x2545_F491_4F6C_DD1D) >> Int64(shift))
                    return content == .quiet ? Int16(Int(value) * 179 / 256) : value
                }
            }
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif
