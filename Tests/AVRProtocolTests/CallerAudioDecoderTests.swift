import Testing
@testable import AVRProtocol

@Suite struct CallerAudioDecoderTests {
    /// Feeds `frames` 20 ms payloads of `kind` and returns what the backend would receive.
    static func feed(_ payloads: [[UInt8]], kind: AudioSocketKind = .audio8kHz)
        -> (delivered: [[UInt8]], durations: [UInt64], events: [CallerAudioDecoder.Event]) {
        var decoder = CallerAudioDecoder(maximumFrameBytes: 65_535)
        var scratch: [UInt8] = []
        var delivered: [[UInt8]] = []
        var durations: [UInt64] = []
        var events: [CallerAudioDecoder.Event] = []
        for (index, payload) in payloads.enumerated() {
            let duration = payload.withUnsafeBytes { bytes in
                decoder.decode(kind: kind, payload: bytes, at: UInt64(index) * 20_000_000, scratch: &scratch) {
                    delivered.append(Array($0))
                }
            }
            durations.append(duration)
            if let event = decoder.takeEvent() { events.append(event) }
            #expect(decoder.takeEvent() == nil, "an event is reported once")
        }
        return (delivered, durations, events)
    }

    @Test func slinIsHandedOnUnchanged() {
        let samples = TestSignal.speechLike(rmsDBFS: -6, count: 1600)
        let frames = stride(from: 0, to: 1600, by: 160).map { TestSignal.littleEndianBytes(Array(samples[$0..<($0 + 160)])) }
        let run = Self.feed(frames)
        #expect(run.delivered == frames)
        #expect(run.durations == Array(repeating: 20_000_000, count: frames.count))
        #expect(run.events.count == 1)
        if case .codec(let event) = run.events.first { #expect(event.codec == .slin) } else { Issue.record("no codec event") }
    }

    /// G.711 in both laws comes out as the decoded samples, every frame, in order — the first
    /// frame too, even when it was held until the second decided the law.
    @Test(arguments: [AudioCodec.ulaw, .alaw])
    func g711IsDecodedInOrderWithNothingLost(law: AudioCodec) {
        for level in [-40.0, -20.0, -6.0, 0.0] {
            let samples = TestSignal.speechLike(rmsDBFS: level, count: 160 * 50, seed: 3)
            let frames = stride(from: 0, to: samples.count, by: 160).map {
                CodecDetectorTests.payloadBytes(Array(samples[$0..<($0 + 160)]), as: law)
            }
            let run = Self.feed(frames)
            let expected = frames.map { frame in frame.flatMap { byte -> [UInt8] in
                let sample = law == .ulaw ? G711.muLawDecode(byte) : G711.aLawDecode(byte)
                return [UInt8(truncatingIfNeeded: sample), UInt8(truncatingIfNeeded: sample >> 8)]
            } }
            #expect(run.delivered == expected, "level \(level) dBFS")
            #expect(run.durations.allSatisfy { $0 == 20_000_000 })
        }
    }

    @Test func higherRatesAreResampledAndReportedOnce() {
        let samples = TestSignal.sine(frequency: 440, rate: 16_000, amplitude: 8000, count: 320 * 10)
        let frames = stride(from: 0, to: samples.count, by: 320).map { TestSignal.littleEndianBytes(Array(samples[$0..<($0 + 320)])) }
        let run = Self.feed(frames, kind: .audio16kHz)
        #expect(run.events == [.resampling(fromRate: 16_000)])
        #expect(run.delivered.reduce(0) { $0 + $1.count } > 320 * 9, "about 320 bytes of 8 kHz audio per 20 ms")
        #expect(run.durations.allSatisfy { $0 == 20_000_000 })
    }
}
