#if canImport(Glibc)
import Glibc
#endif
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

    struct Run {
        /// The step returned for each frame.
        var steps: [CodecDetector.Step] = []
        /// Every decision or correction, in order.
        var events: [CodecDetector.Event] = []
        var final: AudioCodec?
    }

    /// Feeds `frameLength`-byte payloads arriving every `interval` ns.
    static func run(_ bytes: [UInt8], frameLength: Int, from offset: Int = 0, frames: Int = 100,
                    interval: UInt64 = 20_000_000) -> Run {
        var detector = CodecDetector()
        var run = Run()
        var start = offset
        var now: UInt64 = 5_000_000_000
        while start + frameLength <= bytes.count && run.steps.count < frames {
            run.steps.append(bytes[start..<(start + frameLength)].withUnsafeBytes { detector.observe($0, at: now) })
            if let event = detector.takeEvent() { run.events.append(event) }
            start += frameLength
            now += interval
        }
        run.final = detector.decision
        return run
    }

    /// Content that does not flatter the detector, 3 s of each at 8 kHz.
    static let hostileContent: [(name: String, samples: [Int16])] = {
        let count = 8000 * 3
        var random = TestRandom(seed: 99)
        let sawtooth = (0..<count).map { Int16(truncatingIfNeeded: ($0 * 1311) % 65536 - 32768) }
        let clippedSine = (0..<count).map { index in
            Int16(clamping: Int(4 * 32767 * sin(2 * Double.pi * 300 * Double(index) / 8000)))
        }
        let clippedSpeech = TestSignal.speechLike(rmsDBFS: -6, count: count).map { Int16(clamping: Int($0) * 3) }
        let fullScaleTone = TestSignal.sine(frequency: 2500, rate: 8000, amplitude: 32767, count: count)
        let data = (0..<count).map { _ in Int16(truncatingIfNeeded: random.next()) }
        return [
            ("digital silence", [Int16](repeating: 0, count: count)),
            ("quiet speech", TestSignal.speechLike(rmsDBFS: -40, count: count)),
            ("speech", TestSignal.speechLike(rmsDBFS: -20, count: count)),
            ("loud speech", TestSignal.speechLike(rmsDBFS: -6, count: count)),
            ("clipped speech", clippedSpeech),
            ("full-scale sawtooth", sawtooth),
            ("clipped sine", clippedSine),
            ("full-scale 2.5 kHz tone", fullScaleTone),
            ("noise at -30 dBFS", TestSignal.noise(rmsDBFS: -30, count: count)),
            ("noise near 0 dBFS", TestSignal.noise(rmsDBFS: -3, count: count)),
            ("data-like", data),
        ]
    }()

    /// slin is slin whatever it sounds like: 320-byte frames decide on the first frame, are
    /// never held, and nothing loud, clipped, noisy or random turns them into G.711 — the
    /// failure that once doubled a call's audio at the STS.
    @Test(arguments: hostileContent.indices)
    func slinFramesAreSlinWhateverTheContent(index: Int) {
        let (name, samples) = Self.hostileContent[index]
        let bytes = Self.payloadBytes(samples, as: .slin)
        for offset in stride(from: 0, to: 8000, by: 1111) {
            let run = Self.run(bytes, frameLength: 320, from: offset * 2)
            #expect(run.steps.allSatisfy { $0 == .use(.slin) }, "\(name) from sample \(offset)")
            #expect(run.events == [.init(codec: .slin, previous: nil, evidence: .frameSize(320))], "\(name)")
        }
    }

    /// Short slin frames, as Asterisk sends under load, are still slin.
    @Test(arguments: [276, 298, 240, 640])
    func shortAndLongSlinFrames(length: Int) {
        let bytes = Self.payloadBytes(TestSignal.noise(rmsDBFS: -1, count: 8000 * 2), as: .slin)
        // Frames of `length` bytes at the slin rate.
        let interval = UInt64(length) * 1_000_000_000 / 16_000
        let run = Self.run(bytes, frameLength: length, interval: interval)
        #expect(run.final == .slin)
        #expect(run.steps.allSatisfy { $0 == .use(.slin) })
        #expect(run.events.count == 1)
    }

    /// 160-byte frames are G.711 whatever the content: never slin, at most the first frame held,
    /// and the right law wherever the content makes it knowable. White noise near full scale and
    /// random bytes are white noise in both readings, so either law is accepted there.
    @Test(arguments: hostileContent.indices, [AudioCodec.ulaw, .alaw])
    func g711FramesAreG711WhateverTheContent(index: Int, law: AudioCodec) {
        let (name, samples) = Self.hostileContent[index]
        let ambiguous = name == "noise near 0 dBFS" || name == "data-like"
        let bytes = Self.payloadBytes(samples, as: law)
        for offset in stride(from: 0, to: 8000, by: 1111) {
            let run = Self.run(bytes, frameLength: 160, from: offset, frames: 60)
            #expect(run.final == .ulaw || run.final == .alaw, "\(name)")
            #expect(!run.steps.dropFirst().contains(.hold), "\(name): a frame after the first was held")
            #expect(!run.steps.contains(.use(.slin)), "\(name)")
            if !ambiguous {
                #expect(run.final == law, "\(name) as \(law) from sample \(offset)")
                // The law used for the first frames is the final one: no correction was needed.
                #expect(run.events.count == 1, "\(name) as \(law) from sample \(offset): \(run.events)")
            }
        }
    }

    @Test(arguments: [-40.0, -30, -20, -12, -6])
    func speechInEveryCodecAtEveryLevel(rmsDBFS: Double) {
        let speech = TestSignal.speechLike(rmsDBFS: rmsDBFS, count: 8000 * 3)
        for codec in AudioCodec.allCases {
            let bytes = Self.payloadBytes(speech, as: codec)
            let frameLength = 160 * codec.bytesPerSample
            for startFrame in stride(from: 0, to: 100, by: 7) {
                let run = Self.run(bytes, frameLength: frameLength, from: startFrame * frameLength, frames: 30)
                #expect(run.final == codec, "\(codec) at \(rmsDBFS) dBFS from frame \(startFrame)")
                #expect(run.steps.dropFirst().allSatisfy { $0 == .use(codec) })
            }
        }
    }

    @Test func tonesInBothLawsAtEveryLevel() {
        for frequency in [300.0, 1000, 2500, 3900] {
            for amplitude in [100.0, 8000, 32767] {
                let tone = TestSignal.sine(frequency: frequency, rate: 8000, amplitude: amplitude, count: 8000)
                for law in [AudioCodec.ulaw, .alaw] {
                    let run = Self.run(Self.payloadBytes(tone, as: law), frameLength: 160, frames: 30)
                    #expect(run.final == law, "\(frequency) Hz at \(amplitude) as \(law)")
                }
            }
        }
    }

    /// Each law's idle pattern reads as a loud constant in the other law.
    @Test func g711SilenceMarkersDecideOnTheFirstFrame() {
        for (byte, law) in [(UInt8(0xFF), AudioCodec.ulaw), (0x7F, .ulaw), (0xD5, .alaw), (0x55, .alaw)] {
            let run = Self.run([UInt8](repeating: byte, count: 160 * 10), frameLength: 160)
            #expect(run.steps.first == .use(law), "0x\(String(byte, radix: 16))")
            #expect(run.final == law)
        }
    }

    /// An odd payload cannot be 16-bit samples.
    @Test func oddLengthIsG711() {
        let bytes = Self.payloadBytes(TestSignal.speechLike(rmsDBFS: -20, count: 8000), as: .alaw)
        let run = Self.run(bytes, frameLength: 321, interval: 40_000_000)
        #expect(run.final == .alaw)
        #expect(!run.steps.contains(.use(.slin)))
    }

    /// A G.711 leg packetised at 40 ms sends 320-byte frames: the size says slin, the byte rate
    /// (8,000 a second) corrects it after a second of steady arrivals, once, to the right law.
    @Test func byteRateCorrectsA40msG711Leg() {
        let bytes = Self.payloadBytes(TestSignal.speechLike(rmsDBFS: -20, count: 8000 * 4), as: .ulaw)
        let run = Self.run(bytes, frameLength: 320, frames: 80, interval: 40_000_000)
        #expect(run.final == .ulaw)
        #expect(run.events.first == .init(codec: .slin, previous: nil, evidence: .frameSize(320)))
        #expect(run.events.count == 2)
        if case .byteRate(let rate)? = run.events.last?.evidence {
            #expect(abs(rate - 8000) < 200)
        } else {
            Issue.record("no byte-rate correction: \(run.events)")
        }
        // Corrected at the first frame at least 1 s after the first.
        #expect(run.steps.firstIndex(of: .use(.ulaw)) == 25)
    }

    /// And slin packetised at 10 ms (160-byte frames, 16,000 bytes a second) becomes slin.
    @Test func byteRateCorrectsA10msSlinLeg() {
        let bytes = Self.payloadBytes(TestSignal.speechLike(rmsDBFS: -20, count: 8000 * 3), as: .slin)
        let run = Self.run(bytes, frameLength: 160, frames: 150, interval: 10_000_000)
        #expect(run.final == .slin)
        #expect(run.events.count == 2)
        #expect(run.events.last?.previous != nil)
    }

    /// Jitter is not a rate: Asterisk's gaps of up to ~140 ms under load followed by catch-up
    /// bursts, and a pause for a DTMF key, leave a slin decision alone.
    @Test func arrivalJitterDoesNotCorrectSlin() {
        let bytes = Self.payloadBytes(TestSignal.noise(rmsDBFS: -3, count: 8000 * 6), as: .slin)
        var detector = CodecDetector()
        var now: UInt64 = 0
        var random = TestRandom(seed: 5)
        var nominal: UInt64 = 0
        for frame in 0..<(bytes.count / 320) {
            nominal += 20_000_000
            // Late by up to 140 ms, never early, and in order.
            now = max(now, nominal + UInt64(random.int(in: 0...140)) * 1_000_000 * UInt64(frame % 9 == 0 ? 1 : 0))
            if frame == 60 { nominal += 100_000_000; now = max(now, nominal) }  // DTMF: no audio for 100 ms
            let step = bytes[(frame * 320)..<(frame * 320 + 320)].withUnsafeBytes { detector.observe($0, at: now) }
            #expect(step == .use(.slin), "frame \(frame)")
        }
        #expect(detector.decision == .slin)
    }

    /// Loud noise first (no score can read the law there), speech after: the frames of speech
    /// vote, and the law is corrected within a few of them — not kept for the whole call.
    @Test(arguments: [AudioCodec.ulaw, .alaw])
    func speechAfterLoudNoiseCorrectsTheLaw(law: AudioCodec) {
        let noise = TestSignal.noise(rmsDBFS: -1, count: 8000)
        let speech = TestSignal.speechLike(rmsDBFS: -20, count: 8000 * 2)
        let run = Self.run(Self.payloadBytes(noise + speech, as: law), frameLength: 160, frames: 150)
        #expect(run.final == law)
        #expect(run.events.count <= 2)
        if run.events.count == 2 {
            #expect(run.events[1].evidence == .content)
            // Corrected within 15 frames (300 ms) of the speech starting at frame 50.
            #expect(run.steps.firstIndex(of: .use(law))! <= 65)
        }
        // Settled on the right law for good: every frame after the correction uses it.
        let lastWrong = run.steps.lastIndex { $0 != .use(law) } ?? -1
        #expect(run.steps[(lastWrong + 1)...].count >= 80)
    }

    /// A 40 ms G.711 leg that opens with loud noise: the size says slin, the byte rate corrects
    /// that to a law the noise cannot tell, and the speech that follows votes for the right one.
    /// Both corrections are reported, one each, and the call ends on the right law.
    @Test(arguments: [AudioCodec.ulaw, .alaw])
    func rateThenContentEachCorrectOnce(law: AudioCodec) {
        var lawCorrections = 0
        for seed in 0..<6 {
            let noise = TestSignal.noise(rmsDBFS: -1, count: 8000 * 2, seed: UInt64(seed))
            let speech = TestSignal.speechLike(rmsDBFS: -20, count: 8000 * 3)
            let run = Self.run(Self.payloadBytes(noise + speech, as: law), frameLength: 320, frames: 125,
                               interval: 40_000_000)
            #expect(run.final == law, "seed \(seed): \(run.events)")
            #expect(run.events.first == .init(codec: .slin, previous: nil, evidence: .frameSize(320)))
            let corrections = run.events.dropFirst()
            #expect(corrections.count <= 2, "seed \(seed): \(run.events)")
            if case .byteRate? = corrections.first?.evidence {} else {
                Issue.record("seed \(seed): no byte-rate correction first: \(run.events)")
            }
            if corrections.count == 2 {
                #expect(corrections.last?.evidence == .content)
                lawCorrections += 1
            }
        }
        // The noise must have misled the rate correction at least once, or this proves nothing.
        #expect(lawCorrections > 0)
    }

    /// Voting never touches a law it has settled, nor a slin stream once the rate agrees.
    @Test func votingStops() {
        var detector = CodecDetector()
        let speech = Self.payloadBytes(TestSignal.speechLike(rmsDBFS: -20, count: 8000), as: .alaw)
        for frame in 0..<20 {
            _ = speech[(frame * 160)..<(frame * 160 + 160)].withUnsafeBytes { detector.observe($0, at: UInt64(frame) * 20_000_000) }
        }
        #expect(detector.decision == .alaw)
        #expect(!detector.isVoting)
        var slin = CodecDetector()
        let frame = [UInt8](repeating: 0x55, count: 320)
        for index in 0..<60 {
            _ = frame.withUnsafeBytes { slin.observe($0, at: UInt64(index) * 20_000_000) }
        }
        #expect(slin.decision == .slin)
        #expect(!slin.isVoting)
    }

    /// A thin first G.711 frame is held, and the second decides whatever the margin.
    @Test func holdsAtMostTheFirstFrame() {
        let random = (0..<320).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
        var detector = CodecDetector()
        var steps: [CodecDetector.Step] = []
        for frame in 0..<2 {
            steps.append(random[(frame * 160)..<(frame * 160 + 160)].withUnsafeBytes { detector.observe($0, at: UInt64(frame) * 20_000_000) })
        }
        #expect(steps[0] == .hold || steps[0] == .use(.ulaw) || steps[0] == .use(.alaw))
        #expect(steps[1] != .hold)
    }

    @Test func emptyPayloadChangesNothing() {
        var detector = CodecDetector()
        #expect([UInt8]().withUnsafeBytes { detector.observe($0, at: 0) } == .hold)
        #expect(detector.framesObserved == 0)
        #expect(detector.takeEvent() == nil)
    }

    /// The event is reported once.
    @Test func eventIsTakenOnce() {
        var detector = CodecDetector()
        let frame = [UInt8](repeating: 0, count: 320)
        _ = frame.withUnsafeBytes { detector.observe($0, at: 0) }
        #expect(detector.takeEvent() != nil)
        #expect(detector.takeEvent() == nil)
        _ = frame.withUnsafeBytes { detector.observe($0, at: 20_000_000) }
        #expect(detector.takeEvent() == nil)
    }
}
