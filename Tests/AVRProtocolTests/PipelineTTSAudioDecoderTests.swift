import Testing
@testable import AVRProtocol

/// What a decoder made of a body: the samples, the error that stopped it, and how many bytes
/// `finish` dropped. Every emitted piece must be whole samples.
private struct TTSDecodeOutcome: Equatable {
    var pcm: [UInt8] = []
    var error: TTSAudioError?
    var dropped = 0
    var oddPiece = false
}

/// Feeds one piece; the error, if any. (No typed-throws closure is handed to
/// `withUnsafeBytes`: Swift 6.3.1's IRGen crashes on that.)
private func feed(_ decoder: inout TTSAudioDecoder, _ bytes: [UInt8], _ emit: (UnsafeRawBufferPointer) -> Void) -> TTSAudioError? {
    bytes.withUnsafeBytes { (buffer: UnsafeRawBufferPointer) -> TTSAudioError? in
        do throws(TTSAudioError) {
            try decoder.append(buffer, emit)
            return nil
        } catch {
            return error
        }
    }
}

private func decode(_ chunks: [[UInt8]]) -> TTSDecodeOutcome {
    var decoder = TTSAudioDecoder()
    var outcome = TTSDecodeOutcome()
    for chunk in chunks {
        outcome.error = feed(&decoder, chunk) { piece in
            if piece.count % 2 != 0 { outcome.oddPiece = true }
            outcome.pcm += piece
        }
        if outcome.error != nil { break }
    }
    outcome.dropped = decoder.finish()
    return outcome
}

private func le16(_ value: Int) -> [UInt8] { [UInt8(value & 0xFF), UInt8(value >> 8 & 0xFF)] }
private func le32(_ value: UInt32) -> [UInt8] { (0..<4).map { UInt8(value >> (8 * $0) & 0xFF) } }
private func chunk(_ id: String, _ body: [UInt8], size: UInt32? = nil) -> [UInt8] {
    Array(id.utf8) + le32(size ?? UInt32(body.count)) + body + (body.count % 2 == 1 ? [0] : [])
}
private func fmt(tag: Int = 1, channels: Int = 1, rate: UInt32 = 8000, bits: Int = 16, extra: [UInt8] = []) -> [UInt8] {
    let blockAlign = channels * bits / 8
    return chunk("fmt ", le16(tag) + le16(channels) + le32(rate) + le32(rate * UInt32(blockAlign)) + le16(blockAlign) + le16(bits) + extra)
}
private func wav(_ chunks: [UInt8]..., riffSize: UInt32 = 0) -> [UInt8] {
    Array("RIFF".utf8) + le32(riffSize) + Array("WAVE".utf8) + chunks.flatMap { $0 }
}

/// A recognisable PCM ramp.
private func samples(_ count: Int, from start: Int = 0) -> [UInt8] { (0..<count).map { UInt8((start + $0 * 7) & 0xFF) } }

@Suite struct PipelineTTSAudioDecoderTests {
    private func verify(_ body: [UInt8], _ expected: TTSDecodeOutcome, sourceLocation: SourceLocation = #_sourceLocation) {
        for (label, chunks) in chunkings(of: body) {
            let outcome = decode(chunks)
            #expect(outcome == expected, "\(label)", sourceLocation: sourceLocation)
        }
    }

    @Test func rawBodiesPassThrough() {
        let pcm = samples(640)
        verify(pcm, TTSDecodeOutcome(pcm: pcm))
        // Starts like RIFF but is not: held bytes come out first.
        verify(Array("RIFx".utf8) + pcm, TTSDecodeOutcome(pcm: Array("RIFx".utf8) + pcm))
        verify(Array("RI".utf8), TTSDecodeOutcome(pcm: [], dropped: 2))
        verify([], TTSDecodeOutcome())
    }

    @Test func oddByteCountsCarryTheDanglingByte() {
        let pcm = samples(641)
        verify(pcm, TTSDecodeOutcome(pcm: Array(pcm.prefix(640)), dropped: 1))
        verify([0x01], TTSDecodeOutcome(pcm: [], dropped: 1))
        // Pieces of 3 bytes: every sample still whole and in order.
        let body = samples(600)
        let pieces = stride(from: 0, to: body.count, by: 3).map { Array(body[$0..<min($0 + 3, body.count)]) }
        #expect(decode(pieces) == TTSDecodeOutcome(pcm: body))
    }

    @Test func streamedWAVWithUnknownSizes() {
        let pcm = samples(500)
        verify(wav(fmt(), chunk("data", [], size: 0xFFFF_FFFF)) + pcm, TTSDecodeOutcome(pcm: pcm))
        verify(wav(fmt(), chunk("data", [], size: 0), riffSize: 0xFFFF_FFFF) + pcm, TTSDecodeOutcome(pcm: pcm))
    }

    @Test func wholeClipWithSizesAndExtraChunks() {
        let pcm = samples(320)
        let body = wav(chunk("JUNK", samples(27)), fmt(extra: [0, 0]), chunk("LIST", Array("INFOISFT\u{4}\0\0\0Lavf".utf8)),
                       chunk("fact", le32(160)), chunk("data", pcm), chunk("LIST", samples(9)), riffSize: 1234)
        verify(body, TTSDecodeOutcome(pcm: pcm))
        // An odd-sized data chunk: its pad byte is not a sample; the odd byte is carried and dropped.
        let odd = samples(321)
        verify(wav(fmt(), chunk("data", odd), chunk("LIST", samples(4))), TTSDecodeOutcome(pcm: Array(odd.prefix(320)), dropped: 1))
    }

    @Test func extensibleFormatWithPCMSubformat() {
        let guidTail: [UInt8] = [0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71]
        let extensible = le16(22) + le16(16) + le32(4) + le16(1) + guidTail
        let pcm = samples(100)
        verify(wav(fmt(tag: 0xFFFE, extra: extensible), chunk("data", pcm)), TTSDecodeOutcome(pcm: pcm))
        let float = le16(22) + le16(32) + le32(4) + le16(3) + guidTail
        verify(wav(fmt(tag: 0xFFFE, bits: 32, extra: float), chunk("data", pcm)),
               TTSDecodeOutcome(error: .unsupportedFormat(formatTag: 0xFFFE, channels: 1, sampleRate: 8000, bitsPerSample: 32)))
    }

    @Test func twoWAVsBackToBack() {
        let first = samples(200), second = samples(160, from: 3)
        verify(wav(fmt(), chunk("data", first)) + wav(fmt(), chunk("data", second)), TTSDecodeOutcome(pcm: first + second))
    }

    @Test func unsupportedFormatsAreClearErrors() {
        let pcm = samples(64)
        let cases: [([UInt8], TTSAudioError)] = [
            (fmt(rate: 16000), .unsupportedFormat(formatTag: 1, channels: 1, sampleRate: 16000, bitsPerSample: 16)),
            (fmt(rate: 24000), .unsupportedFormat(formatTag: 1, channels: 1, sampleRate: 24000, bitsPerSample: 16)),
            (fmt(channels: 2), .unsupportedFormat(formatTag: 1, channels: 2, sampleRate: 8000, bitsPerSample: 16)),
            (fmt(bits: 8), .unsupportedFormat(formatTag: 1, channels: 1, sampleRate: 8000, bitsPerSample: 8)),
            (fmt(tag: 7, bits: 8), .unsupportedFormat(formatTag: 7, channels: 1, sampleRate: 8000, bitsPerSample: 8)),
            (fmt(tag: 3, bits: 32), .unsupportedFormat(formatTag: 3, channels: 1, sampleRate: 8000, bitsPerSample: 32)),
        ]
        for (format, error) in cases {
            verify(wav(format, chunk("data", pcm)), TTSDecodeOutcome(error: error))
        }
        #expect(TTSAudioError.unsupportedFormat(formatTag: 1, channels: 1, sampleRate: 24000, bitsPerSample: 16).description
            == "TTS audio is a WAV of PCM, 1 channel(s), 24000 Hz, 16 bits; only 8000 Hz mono 16-bit PCM is accepted")
        #expect(TTSAudioError.unsupportedFormat(formatTag: 7, channels: 1, sampleRate: 8000, bitsPerSample: 8).description.contains("µ-law"))
    }

    @Test func malformedWAVs() {
        verify(Array("RIFF".utf8) + le32(0) + Array("AVI ".utf8) + samples(10), TTSDecodeOutcome(error: .notWAVE))
        verify(wav(chunk("data", samples(10))), TTSDecodeOutcome(error: .dataBeforeFormat))
        verify(wav(chunk("fmt ", samples(8))), TTSDecodeOutcome(error: .malformedFormatChunk(size: 8)))
        verify(wav(chunk("fmt ", [], size: 0x7FFF_0000)), TTSDecodeOutcome(error: .malformedFormatChunk(size: 0x7FFF_0000)))
        // A header cut short: the bytes of the incomplete header are reported dropped.
        verify(Array(wav(fmt()).prefix(30)), TTSDecodeOutcome(dropped: 30 - 20))
        // After an error every later piece fails the same way.
        var decoder = TTSAudioDecoder()
        let body = wav(chunk("data", samples(10)))
        #expect(feed(&decoder, body) { _ in } == .dataBeforeFormat)
        #expect(feed(&decoder, [1, 2]) { _ in } == .dataBeforeFormat)
    }

    @Test func aHugeSkippedChunkIsNotKept() {
        // 1 MB of a chunk to skip, fed in pieces: nothing buffered, samples after it pass.
        var decoder = TTSAudioDecoder()
        var out: [UInt8] = []
        let head = wav(fmt(), chunk("JUNK", [], size: 1 << 20))
        #expect(feed(&decoder, head) { out += $0 } == nil)
        let zeros = [UInt8](repeating: 0, count: 4096)
        for _ in 0..<256 { #expect(feed(&decoder, zeros) { out += $0 } == nil) }
        #expect(feed(&decoder, chunk("data", samples(8))) { out += $0 } == nil)
        #expect(out == samples(8))
        #expect(decoder.isWAV)
    }
}
