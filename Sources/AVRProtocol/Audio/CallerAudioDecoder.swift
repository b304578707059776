/// Turns what Asterisk sends on one call — signed linear at 8 to 192 kHz, μ-law or A-law —
/// into 8 kHz s16le PCM, the one format every speech backend takes.
///
/// 8 kHz `0x10` frames go through the ``CodecDetector``: while it holds its first frame
/// (μ-law and A-law read alike) nothing is delivered; once it decides, the held frame and then
/// the new one are delivered in order. Higher-rate frames are resampled. 8 kHz slin is handed
/// on as it came (no copy).
package struct CallerAudioDecoder: Sendable {
    package enum Event: Equatable, Sendable {
        /// The detector decided or corrected the codec of 8 kHz frames.
        case codec(CodecDetector.Event)
        /// Frames at this rate are resampled to 8 kHz from now on.
        case resampling(fromRate: Int)
    }

    private var detector = CodecDetector()
    private var resampler: Resampler?
    /// The first `0x10` frame, when it alone could not tell μ-law from A-law.
    private var undecided: HeldAudio
    private var event: Event?
    /// The codec of 8 kHz frames when the caller's leg names it (the WebSocket channel's
    /// MEDIA_START): the detector is not consulted.
    private let knownCodec: AudioCodec?

    /// `maximumFrameBytes`: the largest frame the detector may hold. `knownCodec`: the codec
    /// of 8 kHz frames, when it is known rather than detected.
    package init(maximumFrameBytes: Int, knownCodec: AudioCodec? = nil) {
        self.knownCodec = knownCodec
        undecided = HeldAudio(capacity: knownCodec == nil ? maximumFrameBytes : 0)
    }

    /// The codec of 8 kHz frames, once known.
    package var codec: AudioCodec? { detector.decision }

    /// Decodes one frame received at `now` (nanoseconds; the detector measures byte rates
    /// with it) and hands 8 kHz s16le PCM to `deliver`: nothing, this frame, or the held frame
    /// and this one. `scratch` is reusable storage (its contents are replaced).
    /// Returns how long the frame plays, in nanoseconds, as the codec in use reads it.
    package mutating func decode(kind: AudioSocketKind, payload: UnsafeRawBufferPointer, at now: UInt64,
                                scratch: inout [UInt8], deliver: (UnsafeRawBufferPointer) -> Void) -> UInt64 {
        if kind != .audio8kHz {
            let rate = kind.sampleRate ?? Resampler.outputRate
            if resampler?.inputRate != rate {
                resampler = Resampler(inputRate: rate)
                event = .resampling(fromRate: rate)
            }
            scratch.removeAll(keepingCapacity: true)
            resampler?.process(payload, appendingLittleEndianTo: &scratch)
            scratch.withUnsafeBytes { deliver($0) }
            return ArrivalJitter.linearDuration(bytes: payload.count, sampleRate: rate)
        }
        if let knownCodec {
            Self.forward(payload, codec: knownCodec, scratch: &scratch, deliver: deliver)
            return knownCodec == .slin
                ? ArrivalJitter.linearDuration(bytes: payload.count, sampleRate: Resampler.outputRate)
                : ArrivalJitter.g711Duration(bytes: payload.count)
        }
        let step = detector.observe(payload, at: now)
        if let decided = detector.takeEvent() { event = .codec(decided) }
        switch step {
        case .hold:
            undecided.append(payload)
            return ArrivalJitter.g711Duration(bytes: payload.count)
        case .use(let codec):
            if !undecided.isEmpty {
                var held = undecided
                undecided = HeldAudio(capacity: 0)
                held.drain { Self.forward($0, codec: codec, scratch: &scratch, deliver: deliver) }
            }
            Self.forward(payload, codec: codec, scratch: &scratch, deliver: deliver)
            return codec == .slin
                ? ArrivalJitter.linearDuration(bytes: payload.count, sampleRate: Resampler.outputRate)
                : ArrivalJitter.g711Duration(bytes: payload.count)
        }
    }

    /// What changed with the last frame, once.
    package mutating func takeEvent() -> Event? {
        defer { event = nil }
        return event
    }

    private static func forward(_ payload: UnsafeRawBufferPointer, codec: AudioCodec, scratch: inout [UInt8],
                                deliver: (UnsafeRawBufferPointer) -> Void) {
        if codec == .slin { return deliver(payload) }
        scratch.removeAll(keepingCapacity: true)
        codec.appendLittleEndian(decoding: payload, to: &scratch)
        scratch.withUnsafeBytes { deliver($0) }
    }
}
