import Testing
@testable import AVRProtocol

@Suite struct CodecDetectorTests {
    /// Encodes 8 kHz samples the way each codec arrives in `0x10` payloads.
    static func payloadBytes(_ samples: [Int16], as codec: AudioCodec) -> [UInt8] {
        switch codec {
        case .slin: TestSignal.littleEndianBytes(samples)
        case .ulaw: samples.map(G711.muLaw)
        case .alaw: samples.map(G711.aLaw)
        }
    }

    /// Feeds `frameLength`-byte payloads until a decision; returns it with the frame count.
    static func detect(_ bytes: [UInt8], frameLength: Int, from offset: Int = 0) -> (AudioCodec?, Int) {
        var detector = CodecDetector()
        var start = offset
        while start + frameLength <= bytes.count {
            let decision = bytes[start..<(start + frameLength)].withUnsafeBytes { detector.observe(payload: $0) }
            if let decision { return (decision, detector.framesObserved) }
            start += frameLength
        }
        return (nil, detector.framesObserved)
    }

    @Test(arguments: [-40.0, -30, -20, -12, -6])
    func speechLikeSignalsAtEveryLevel(rmsDBFS: Double) {
        let speech = TestSignal.speechLike(rmsDBFS: rmsDBFS, count: 8000 * 3)
        for codec in AudioCodec.allCases {
            let bytes = Self.payloadBytes(speech, as: codec)
            let frameLength = 160 * codec.bytesPerSample
            // Start anywhere: in a syllable, between syllables.
            for startFrame in stride(from: 0, to: 100, by: 7) {
                let (decision, frames) = Self.detect(bytes, frameLength: frameLength, from: startFrame * frameLength)
                #expect(decision == codec, "\(codec) at \(rmsDBFS) dBFS from frame \(startFrame)")
                #expect(frames <= 25)
            }
        }
    }

    @Test func speechDecidesWithinAFewFrames() {
        let speech = TestSignal.speechLike(rmsDBFS: -20, count: 8000)
        for codec in AudioCodec.allCases {
            let (decision, frames) = Self.detect(Self.payloadBytes(speech, as: codec), frameLength: 160 * codec.bytesPerSample, from: 160 * 10 * codec.bytesPerSample)
            #expect(decision == codec)
            #expect(frames == 1, "\(codec)")
        }
    }

    @Test func aClearToneDecidesOnTheFirstFrame() {
        // Held frames become latency for the whole call with an echoing STS: a reading that
        // stands out by the early ratio must not wait for the minimum.
        let tone = TestSignal.sine(frequency: 400, rate: 8000, amplitude: 8000, count: 8000)
        for codec in AudioCodec.allCases {
            let (decision, frames) = Self.detect(Self.payloadBytes(tone, as: codec), frameLength: 160 * codec.bytesPerSample)
            #expect(decision == codec)
            #expect(frames == 1, "\(codec)")
        }
    }

    @Test func shortSlinFramesStillSlin() {
        // Asterisk sometimes sends 276 or 298 bytes instead of 320.
        let speech = TestSignal.speechLike(rmsDBFS: -24, count: 8000)
        let bytes = TestSignal.littleEndianBytes(speech)
        var detector = CodecDetector()
        var decision: AudioCodec?
        var start = 0
        for length in [320, 276, 320, 298, 320, 320, 276, 320, 320, 320] where decision == nil {
            decision = bytes[start..<(start + length)].withUnsafeBytes { detector.observe(payload: $0) }
            start += length
        }
        #expect(decision == .slin)
    }

    @Test func noiseAndTones() {
        let signals: [(String, [Int16])] = [
            ("noise -60 dBFS", TestSignal.noise(rmsDBFS: -60, count: 8000)),
            ("noise -30 dBFS", TestSignal.noise(rmsDBFS: -30, count: 8000)),
            ("440 Hz loud", TestSignal.sine(frequency: 440, rate: 8000, amplitude: 29000, count: 8000)),
            ("1 kHz loud", TestSignal.sine(frequency: 1000, rate: 8000, amplitude: 29000, count: 8000)),
            ("2100 Hz", TestSignal.sine(frequency: 2100, rate: 8000, amplitude: 10000, count: 8000)),
            ("3 kHz quiet", TestSignal.sine(frequency: 3000, rate: 8000, amplitude: 1000, count: 8000)),
        ]
        for (name, samples) in signals {
            for codec in AudioCodec.allCases {
                let (decision, _) = Self.detect(Self.payloadBytes(samples, as: codec), frameLength: 160 * codec.bytesPerSample)
                #expect(decision == codec, "\(name) as \(codec)")
            }
        }
    }

    @Test func silenceMarkers() {
        // A-law idle 0xD5 and slin zeros are unambiguous at once: the first frame decides.
        #expect(Self.detect([UInt8](repeating: 0xD5, count: 160 * 10), frameLength: 160) == (.alaw, 1))
        #expect(Self.detect([UInt8](repeating: 0x55, count: 160 * 10), frameLength: 160) == (.alaw, 1))
        #expect(Self.detect([UInt8](repeating: 0x00, count: 320 * 10), frameLength: 320) == (.slin, 1))
        // μ-law idle with the odd ±1 step (0xFF, 0x7F, 0xFE, 0x7E) reads as loud slin.
        let idle: [UInt8] = (0..<1600).map { [0xFF, 0x7F, 0xFF, 0xFE, 0x7F, 0x7E][$0 % 6] }
        #expect(Self.detect(idle, frameLength: 160) == (.ulaw, 1))
    }

    @Test func pureMuLawSilenceFallsBackOnTheSizeHint() {
        // 0xFF is 0 in μ-law and -1 in slin: no reading wins, so after maximumFrames the
        // 160-byte size settles it.
        #expect(Self.detect([UInt8](repeating: 0xFF, count: 160 * 40), frameLength: 160) == (.ulaw, 25))
        // The same bytes in 320-byte payloads are taken for slin.
        #expect(Self.detect([UInt8](repeating: 0xFF, count: 320 * 40), frameLength: 320) == (.slin, 25))
    }

    @Test func oddLengthRulesOutSlin() {
        // Bytes that would be quiet slin (0x00 0x00 …) but arrive in odd-length payloads.
        var detector = CodecDetector()
        var decision: AudioCodec?
        let speech = Self.payloadBytes(TestSignal.speechLike(rmsDBFS: -20, count: 2000), as: .ulaw)
        var start = 0
        while decision == nil && start + 161 <= speech.count {
            decision = speech[start..<(start + 161)].withUnsafeBytes { detector.observe(payload: $0) }
            start += 161
        }
        #expect(decision == .ulaw)
    }

    @Test func decisionIsFinal() {
        var detector = CodecDetector()
        let alawSilence = [UInt8](repeating: 0xD5, count: 160)
        _ = alawSilence.withUnsafeBytes { detector.observe(payload: $0) }
        #expect(detector.decision == .alaw)
        let zeros = [UInt8](repeating: 0, count: 320)
        for _ in 0..<30 {
            #expect(zeros.withUnsafeBytes { detector.observe(payload: $0) } == .alaw)
        }
        #expect(detector.framesObserved == 1)
    }

    @Test func emptyPayloadsAreNotFrames() {
        var detector = CodecDetector()
        #expect([UInt8]().withUnsafeBytes { detector.observe(payload: $0) } == nil)
        #expect(detector.framesObserved == 0)
    }
}
