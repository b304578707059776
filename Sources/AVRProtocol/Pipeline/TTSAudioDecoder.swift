/// Why a TTS response body cannot be played.
package enum TTSAudioError: Error, Sendable, Equatable, CustomStringConvertible {
    /// `RIFF` but not `WAVE` (or another RIFF form).
    case notWAVE
    /// A WAV whose format is not 8 kHz mono 16-bit PCM.
    case unsupportedFormat(formatTag: UInt16, channels: UInt16, sampleRate: UInt32, bitsPerSample: UInt16)
    /// A `fmt ` chunk shorter than 16 bytes or longer than `TTSAudioDecoder.maximumFormatChunkBytes`.
    case malformedFormatChunk(size: UInt32)
    /// The `data` chunk came before any `fmt ` chunk.
    case dataBeforeFormat

    package var description: String {
        switch self {
        case .notWAVE:
            "TTS audio starts with RIFF but is not a WAVE file"
        case .unsupportedFormat(let formatTag, let channels, let sampleRate, let bitsPerSample):
            "TTS audio is a WAV of \(Self.formatName(formatTag)), \(channels) channel(s), \(sampleRate) Hz, "
                + "\(bitsPerSample) bits; only 8000 Hz mono 16-bit PCM is accepted"
        case .malformedFormatChunk(let size):
            "TTS audio is a WAV with a malformed fmt chunk (\(size) bytes)"
        case .dataBeforeFormat:
            "TTS audio is a WAV whose data chunk comes before its fmt chunk"
        }
    }

    private static func formatName(_ tag: UInt16) -> String {
        switch tag {
        case 1: "PCM"
        case 3: "IEEE float"
        case 6: "A-law"
        case 7: "µ-law"
        case 0xFFFE: "extensible (not PCM)"
        default: "format \(tag)"
        }
    }
}

/// A TTS response body → 8 kHz s16le PCM, as it streams in.
///
/// A body that starts with `RIFF` is a WAV: its chunks are walked to `data` (the header may
/// arrive cut anywhere; other chunks are skipped without being kept), the `fmt ` chunk must
/// say 8 kHz mono 16-bit PCM, and the samples after `data` are passed on. A `data` size of 0
/// or 0xFFFFFFFF (streamed WAVs) means "to the end of the body"; any other size is honoured,
/// and what follows is walked as chunks again (a `LIST` chunk after the samples, or another
/// `RIFF…WAVE` when a module writes one WAV per segment). Any other body is raw PCM.
/// Samples are only ever passed on whole: an odd byte is carried to the next piece.
/// Memory is bounded: at most 12 + 8 + `maximumFormatChunkBytes` header bytes are kept.
package struct TTSAudioDecoder: Sendable {
    package static let maximumFormatChunkBytes = 256

    private enum State: Sendable {
        /// The first bytes: `RIFF` or not.
        case sniffing
        /// Raw PCM to the end.
        case raw
        /// The 12-byte RIFF header (`header` holds what has come).
        case riffHeader
        /// An 8-byte chunk header.
        case chunkHeader
        /// The `fmt ` chunk's body (`remaining` bytes to come).
        case formatChunk
        /// A chunk being skipped, with its pad byte.
        case skipping
        /// Samples: `remaining` bytes, or to the end when nil.
        case samples
        case failed(TTSAudioError)
    }

    private var state = State.sniffing
    private var header: [UInt8] = []
    private var remaining: UInt64 = 0
    /// `remaining` is meaningless: the samples run to the end of the body.
    private var toEnd = false
    private var formatSeen = false
    private var padAfterSamples = false
    private var dangling: UInt8?
    /// Whether the body was a WAV.
    package private(set) var isWAV = false

    package init() {}

    package mutating func append(_ bytes: UnsafeRawBufferPointer, _ emit: (UnsafeRawBufferPointer) -> Void) throws(TTSAudioError) {
        var index = 0
        while index < bytes.count {
            switch state {
            case .failed(let error):
                throw error
            case .raw:
                emitSamples(UnsafeRawBufferPointer(rebasing: bytes[index...]), emit)
                return
            case .samples:
                let available = bytes.count - index
                let count = toEnd ? available : Int(min(UInt64(available), remaining))
                emitSamples(UnsafeRawBufferPointer(rebasing: bytes[index..<(index + count)]), emit)
                index += count
                if !toEnd {
                    remaining -= UInt64(count)
                    if remaining == 0 {
                        // An odd-sized chunk is followed by a pad byte.
                        remaining = padAfterSamples ? 1 : 0
                        state = padAfterSamples ? .skipping : .chunkHeader
                    }
                }
            case .skipping:
                let count = Int(min(UInt64(bytes.count - index), remaining))
                index += count
                remaining -= UInt64(count)
                if remaining == 0 { state = .chunkHeader }
            case .sniffing:
                header.append(bytes[index])
                index += 1
                let riff: [UInt8] = [0x52, 0x49, 0x46, 0x46]  // "RIFF"
                if header.last != riff[header.count - 1] {
                    // Raw audio: what was held first.
                    state = .raw
                    let held = header
                    header.removeAll()
                    held.withUnsafeBytes { emitSamples($0, emit) }
                } else if header.count == 4 {
                    isWAV = true
                    state = .riffHeader
                }
            case .riffHeader:
                index += take(bytes, from: index, upTo: 12)
                guard header.count == 12 else { continue }
                guard header[8..<12].elementsEqual("WAVE".utf8) else { return try fail(.notWAVE) }
                header.removeAll()
                state = .chunkHeader
            case .chunkHeader:
                index += take(bytes, from: index, upTo: 8)
                guard header.count == 8 else { continue }
                let id = header[0..<4]
                let size = UInt32(header[4]) | UInt32(header[5]) << 8 | UInt32(header[6]) << 16 | UInt32(header[7]) << 24
                header.removeAll()
                if id.elementsEqual("RIFF".utf8) {
                    // Another WAV follows: its RIFF header's last 4 bytes are the form.
                    header = Array("RIFF".utf8) + [UInt8(size & 0xFF), UInt8(size >> 8 & 0xFF), UInt8(size >> 16 & 0xFF), UInt8(size >> 24)]
                    formatSeen = false
                    state = .riffHeader
                } else if id.elementsEqual("fmt ".utf8) {
                    guard size >= 16, size <= Self.maximumFormatChunkBytes else { return try fail(.malformedFormatChunk(size: size)) }
                    remaining = UInt64(size) + UInt64(size & 1)
                    state = .formatChunk
                } else if id.elementsEqual("data".utf8) {
                    guard formatSeen else { return try fail(.dataBeforeFormat) }
                    toEnd = size == 0 || size == 0xFFFF_FFFF
                    remaining = UInt64(size)
                    padAfterSamples = size & 1 == 1
                    state = .samples
                } else {
                    remaining = UInt64(size) + UInt64(size & 1)
                    state = remaining == 0 ? .chunkHeader : .skipping
                }
            case .formatChunk:
                index += take(bytes, from: index, upTo: Int(remaining))
                guard header.count == Int(remaining) else { continue }
                try checkFormat()
                header.removeAll()
                formatSeen = true
                state = .chunkHeader
            }
        }
    }

    /// The body ended: returns how many bytes were dropped (a dangling odd byte, or an
    /// incomplete header).
    package mutating func finish() -> Int {
        let dropped = (dangling == nil ? 0 : 1) + header.count
        self = TTSAudioDecoder()
        return dropped
    }

    /// Appends bytes to `header` until it holds `count`; returns how many were taken.
    private mutating func take(_ bytes: UnsafeRawBufferPointer, from index: Int, upTo count: Int) -> Int {
        let taken = min(count - header.count, bytes.count - index)
        header.append(contentsOf: bytes[index..<(index + taken)])
        return taken
    }

    private mutating func fail(_ error: TTSAudioError) throws(TTSAudioError) {
        state = .failed(error)
        header.removeAll()
        throw error
    }

    private mutating func checkFormat() throws(TTSAudioError) {
        func u16(_ at: Int) -> UInt16 { UInt16(header[at]) | UInt16(header[at + 1]) << 8 }
        func u32(_ at: Int) -> UInt32 { UInt32(u16(at)) | UInt32(u16(at + 2)) << 16 }
        var tag = u16(0)
        if tag == 0xFFFE, header.count >= 26 {
            // WAVE_FORMAT_EXTENSIBLE: the sub-format GUID starts with the real tag.
            let sub = u16(24)
            if sub == 1 { tag = 1 }
        }
        let channels = u16(2), rate = u32(4), bits = u16(14)
        guard tag == 1, channels == 1, rate == 8000, bits == 16 else {
            try fail(.unsupportedFormat(formatTag: tag, channels: channels, sampleRate: rate, bitsPerSample: bits))
            return
        }
    }

    /// Passes on whole samples, carrying an odd byte to the next piece.
    private mutating func emitSamples(_ bytes: UnsafeRawBufferPointer, _ emit: (UnsafeRawBufferPointer) -> Void) {
        guard !bytes.isEmpty else { return }
        var rest = bytes
        if let first = dangling {
            var pair = (first, rest[0])
            withUnsafeBytes(of: &pair) { emit($0) }
            dangling = nil
            rest = UnsafeRawBufferPointer(rebasing: rest[1...])
        }
        let even = rest.count & ~1
        if even > 0 { emit(UnsafeRawBufferPointer(rebasing: rest[..<even])) }
        if rest.count > even { dangling = rest[even] }
    }
}
