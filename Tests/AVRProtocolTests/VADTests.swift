#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import AVRProtocol

/// Feeds caller (and optionally agent) audio in 20 ms frames; records the frame of each event.
private struct VADRun {
    var starts: [Int] = []
    var ends: [Int] = []
    var speakingAtEnd = false
    var gateAtEnd: Float = 0
    var probabilities: [Float] = []

    init(caller: [Int16], agent: [Int16]? = nil, configuration: VADConfiguration = VADConfiguration(),
         echoSpan: ClosedRange<Int>? = nil, trusted: Bool = false) {
        var detector = BargeInDetector(configuration: configuration)
        detector.echoSpanFrames = echoSpan
        detector.echoSpanTrusted = trusted
        for frame in 0..<(caller.count / 160) {
            let range = frame * 160..<(frame + 1) * 160
            if let agent, range.upperBound <= agent.count {
                agent[range].withUnsafeBufferPointer { detector.agentPlayed($0) }
            }
            let before = detector.speaking
            let event = caller[range].withUnsafeBufferPointer { detector.callerFrame($0) }
            // The event is exactly the change of `speaking`.
            #expect(event == (before == detector.speaking ? nil : (detector.speaking ? .speechStarted : .speechEnded)))
            #expect((0...1).contains(detector.lastProbability) && (0...1).contains(detector.lastRawProbability))
            probabilities.append(detector.lastProbability)
            switch event {
            case .speechStarted: starts.append(frame)
            case .speechEnded: ends.append(frame)
            case nil: break
            }
        }
        speakingAtEnd = detector.speaking
        gateAtEnd = detector.echoGateDecibels
    }
}

private func mix(_ signals: [Int16]...) -> [Int16] {
    let count = signals.map(\.count).max() ?? 0
    return (0..<count).map { index in
        Int16(clamping: signals.reduce(0) { $0 + (index < $1.count ? Int($1[index]) : 0) })
    }
}

private func scaled(_ samples: [Int16], decibels: Double) -> [Int16] {
    let gain = pow(10, decibels / 20)
    return samples.map { Int16(clamping: Int((Double($0) * gain).rounded())) }
}

private func delayed(_ samples: [Int16], by count: Int) -> [Int16] {
    [Int16](repeating: 0, count: count) + samples.dropLast(count)
}

private let second = 8000

@Suite struct BargeInDetectorTests {
    @Test func silenceIsNotSpeech() {
        let run = VADRun(caller: [Int16](repeating: 0, count: 10 * second))
        #expect(run.starts.isEmpty && !run.speakingAtEnd)
    }

    @Test func lineNoiseIsNotSpeech() {
        for level in [-40.0, -50.0, -30.0] {
            let run = VADRun(caller: TestSignal.noise(rmsDBFS: level, count: 20 * second, seed: 3))
            #expect(run.starts.isEmpty, "noise at \(level) dBFS triggered at frames \(run.starts)")
        }
    }

    @Test func speechAfterNoiseStartsWithinBudgetAndEnds() {
        let noise = TestSignal.noise(rmsDBFS: -40, count: 6 * second)
        for level in [-10.0, -20.0, -30.0] {
            let speech = [Int16](repeating: 0, count: 2 * second) + TestSignal.speechLike(rmsDBFS: level, count: 2 * second)
            let run = VADRun(caller: mix(noise, speech))
            #expect(run.starts.count == 1, "speech at \(level) dBFS: starts \(run.starts)")
            if let start = run.starts.first {
                let latency = (start + 1) * 20 - 2000
                #expect(latency >= 0 && latency <= 300, "speech at \(level) dBFS detected after \(latency) ms")
            }
            // Ends after the redemption frames of noise (20 × 20 ms) once speech stops at 4 s.
            #expect(run.ends.count == 1)
            if let end = run.ends.first { #expect(end >= 200 && end <= 200 + 20 + 15, "ended at frame \(end)") }
            #expect(!run.speakingAtEnd)
        }
    }

    @Test func clippedSpeechIsSpeech() {
        let loud = scaled(TestSignal.speechLike(rmsDBFS: -10, count: 2 * second), decibels: 20)  // hard clipping
        let caller = TestSignal.noise(rmsDBFS: -50, count: second) + loud
        let run = VADRun(caller: caller)
        #expect(run.starts.count == 1)
        if let start = run.starts.first { #expect((start + 1) * 20 - 1000 <= 200) }
    }

    /// Design choice: a steady tone is not speech (it fills 3-7 of the 104 bins; each bin's
    /// log likelihood ratio is capped), so dial tone, ringback and DTMF-like beeps never barge in.
    @Test func tonesAreNotSpeech() {
        for frequency in [440.0, 1000.0, 2000.0] {
            let tone = [Int16](repeating: 0, count: second)
                + TestSignal.sine(frequency: frequency, rate: 8000, amplitude: 10000, count: 3 * second)
            let run = VADRun(caller: mix(tone, TestSignal.noise(rmsDBFS: -50, count: 4 * second)))
            #expect(run.starts.isEmpty, "\(frequency) Hz tone triggered at \(run.starts)")
        }
    }

    /// Clicks (5 ms bursts, every 500 ms) fill at most two 32 ms analysis windows: the default
    /// `VAD_MIN_SPEECH_FRAMES` (3) ignores them, a minimum of 1 would barge in on each.
    @Test func clicksAreNotSpeech() {
        var clicks = TestSignal.noise(rmsDBFS: -50, count: 6 * second)
        let burst = TestSignal.noise(rmsDBFS: -6, count: 40, seed: 21)
        for start in stride(from: second, to: 6 * second, by: second / 2) {
            for index in 0..<40 { clicks[start + index] = burst[index] }
        }
        #expect(VADRun(caller: clicks).starts.isEmpty)
        var eager = VADConfiguration()
        eager.minSpeechFrames = 1
        #expect(VADRun(caller: clicks, configuration: eager).starts.count >= 5)
    }

    @Test func dcOffsetIsNotSpeechButSpeechOnItIs() {
        let offset = [Int16](repeating: 8000, count: 6 * second)
        let quiet = VADRun(caller: mix(offset, TestSignal.noise(rmsDBFS: -50, count: 6 * second)))
        #expect(quiet.starts.isEmpty)
        // An offset stepping in mid-call is not speech either (the band starts at 187 Hz).
        let step = [Int16](repeating: 0, count: 2 * second) + [Int16](repeating: -12000, count: 4 * second)
        #expect(VADRun(caller: mix(step, TestSignal.noise(rmsDBFS: -50, count: 6 * second))).starts.isEmpty)
        let speech = [Int16](repeating: 0, count: 2 * second) + TestSignal.speechLike(rmsDBFS: -20, count: 2 * second)
        let talking = VADRun(caller: mix(offset, TestSignal.noise(rmsDBFS: -50, count: 6 * second), speech))
        #expect(talking.starts.count == 1)
    }

    @Test func randomBytesAreStationaryNoise() {
        var random = TestRandom(seed: 99)
        let samples = (0..<(10 * second)).map { _ in Int16(truncatingIfNeeded: random.next()) }
        let run = VADRun(caller: samples)
        #expect(run.starts.isEmpty)
    }

    @Test func theAgentsEchoIsNotBargeIn() {
        let agent = [Int16](repeating: 0, count: second) + TestSignal.speechLike(rmsDBFS: -10, count: 9 * second, seed: 5)
        for delay in [0, 480, 1600] {  // 0, 60, 200 ms
            let echo = scaled(delayed(agent, by: delay), decibels: -20)
            let caller = mix(echo, TestSignal.noise(rmsDBFS: -50, count: 10 * second))
            let gated = VADRun(caller: caller, agent: agent)
            #expect(gated.starts.isEmpty, "echo at \(delay) samples triggered at \(gated.starts)")
            // Without the echo reference the same audio is speech: the gate is what rejects it.
            let ungated = VADRun(caller: caller)
            #expect(!ungated.starts.isEmpty)
        }
    }

    @Test func aTrustedEchoSpanKeepsTheEchoOutAndLowersTheGate() {
        // The echo 10 dB down; the span as an echo canceller placed at the measured delay
        // gives it (one frame before the delay, five frames).
        let agent = [Int16](repeating: 0, count: second) + TestSignal.speechLike(rmsDBFS: -10, count: 19 * second, seed: 5)
        for delay in [0, 3, 10] {
            let echo = scaled(delayed(agent, by: delay * 160), decibels: -10)
            let caller = mix(echo, TestSignal.noise(rmsDBFS: -50, count: 20 * second))
            let span = max(delay - 1, 0)...max(delay - 1, 0) + 4
            let wide = VADRun(caller: caller, agent: agent)
            let spanned = VADRun(caller: caller, agent: agent, echoSpan: span, trusted: true)
            #expect(wide.starts.isEmpty && spanned.starts.isEmpty, "echo \(delay) frames late: \(wide.starts) / \(spanned.starts)")
            #expect(spanned.gateAtEnd != wide.gateAtEnd, "echo \(delay) frames late: the span's gate was not used")
            // Not trusted, the span is measured but the gate is the whole window's.
            let untrusted = VADRun(caller: caller, agent: agent, echoSpan: span, trusted: false)
            #expect(untrusted.probabilities == wide.probabilities && untrusted.gateAtEnd == wide.gateAtEnd)
        }
    }

    @Test func speechOverTheEchoIsBargeIn() {
        let agent = [Int16](repeating: 0, count: second) + TestSignal.speechLike(rmsDBFS: -10, count: 7 * second, seed: 5)
        let echo = scaled(delayed(agent, by: 480), decibels: -20)
        for level in [-10.0, -20.0] {
            let caller = [Int16](repeating: 0, count: 3 * second) + TestSignal.speechLike(rmsDBFS: level, count: 3 * second, seed: 17)
            let run = VADRun(caller: mix(echo, caller, TestSignal.noise(rmsDBFS: -50, count: 8 * second)), agent: agent)
            // The synthetic voice never pauses; after ~1.3 s of it the minimum statistics take it for
            // the line's floor (as with a steady tone), so only the first start is asserted.
            #expect(!run.starts.isEmpty, "caller at \(level) dBFS: starts \(run.starts) ends \(run.ends)")
            if let start = run.starts.first {
                let latency = (start + 1) * 20 - 3000
                #expect(latency >= 0 && latency <= 300, "caller at \(level) dBFS over the echo: \(latency) ms")
            }
        }
    }

    @Test func oddFrameSizesAndOtherFrameLengths() {
        var configuration = VADConfiguration()
        for frameSamples in [80, 240, 256] {
            configuration.frameSamples = frameSamples
            let caller = mix(TestSignal.noise(rmsDBFS: -45, count: 5 * second),
                             [Int16](repeating: 0, count: 2 * second) + TestSignal.speechLike(rmsDBFS: -20, count: second))
            var detector = BargeInDetector(configuration: configuration)
            var starts = 0
            var offset = 0
            var size = 1
            while offset < caller.count {  // frames of 1…300 samples, and empty ones
                let end = min(offset + size, caller.count)
                if caller[offset..<end].withUnsafeBufferPointer({ detector.callerFrame($0) }) == .speechStarted { starts += 1 }
                _ = [Int16]().withUnsafeBufferPointer { detector.callerFrame($0) }
                offset = end
                size = size % 300 + 37
            }
            #expect(starts == 1, "frameSamples \(frameSamples)")
        }
    }

    @Test func onsetIncludesThePad() {
        var configuration = VADConfiguration()
        configuration.preSpeechPadFrames = 7
        var detector = BargeInDetector(configuration: configuration)
        let caller = mix(TestSignal.noise(rmsDBFS: -45, count: 3 * second),
                         [Int16](repeating: 0, count: 2 * second) + TestSignal.speechLike(rmsDBFS: -20, count: second))
        #expect(detector.onsetFramesAgo == 0)
        for frame in 0..<(caller.count / 160) {
            let event = caller[frame * 160..<(frame + 1) * 160].withUnsafeBufferPointer { detector.callerFrame($0) }
            if event == .speechStarted {
                #expect(detector.onsetFramesAgo >= 7 + configuration.minSpeechFrames - 1)
                #expect(detector.onsetFramesAgo <= 7 + 15)
            }
        }
    }
}

@Suite struct SpeechHangoverTests {
    private func events(_ probabilities: [Float], _ edit: (inout VADConfiguration) -> Void = { _ in }) -> [String] {
        var configuration = VADConfiguration()
        edit(&configuration)
        var hangover = SpeechHangover(configuration: configuration)
        return probabilities.enumerated().compactMap { index, p in
            hangover.step(probability: p).map { "\($0 == .speechStarted ? "start" : "end")@\(index)" }
        }
    }

    @Test func minSpeechFramesConfirm() {
        // Default: 3 speech frames, 20 quiet frames end.
        #expect(events([0.9, 0.9, 0.9] + [Float](repeating: 0, count: 20)) == ["start@2", "end@22"])
        // Frames between the thresholds neither confirm nor end.
        #expect(events([0.9, 0.4, 0.4, 0.9, 0.9]) == ["start@4"])
    }

    @Test func misfireEndsSilently() {
        #expect(events([0.9, 0.9] + [Float](repeating: 0.1, count: 25) + [0.9, 0.9, 0.9]) == ["start@29"])
    }

    @Test func redemptionRestartsOnSpeech() {
        let quiet19 = [Float](repeating: 0, count: 19)
        #expect(events([0.9, 0.9, 0.9] + quiet19 + [0.6] + quiet19 + [0]) == ["start@2", "end@42"])
    }

    @Test func configuredCounts() {
        #expect(events([0.6, 0, 0.6]) { $0.minSpeechFrames = 1; $0.redemptionFrames = 1 } == ["start@0", "end@1", "start@2"])
        #expect(events([0.7, 0.7, 0.7]) { $0.positiveSpeechThreshold = 0.8 } == [])
    }
}

@Suite struct VADConfigurationTests {
    private func parse(_ environment: [String: String]) throws(ConfigurationError) -> VADConfiguration {
        try Configuration.parse(environment: environment, fileExists: { _ in false }).vad
    }

    private func message(_ environment: [String: String]) -> String? {
        do { _ = try parse(environment); return nil } catch { return error.description }
    }

    @Test func defaults() throws {
        let vad = try parse([:])
        #expect(vad == VADConfiguration())
        #expect(vad.positiveSpeechThreshold == 0.5 && vad.negativeSpeechThreshold == 0.25)
        #expect(vad.minSpeechFrames == 3 && vad.preSpeechPadFrames == 5 && vad.redemptionFrames == 20)
        #expect(vad.frameSamples == 160 && vad.model == .sohn)
    }

    @Test func everyVariable() throws {
        let vad = try parse([
            "VAD_POSITIVE_SPEECH_THRESHOLD": "0.7", "VAD_NEGATIVE_SPEECH_THRESHOLD": "0.7",
            "VAD_MIN_SPEECH_FRAMES": "5", "VAD_PRE_SPEECH_PAD_FRAMES": "0", "VAD_REDEMPTION_FRAMES": "40",
            "VAD_FRAME_SAMPLES": "240", "VAD_MODEL": "Sohn",
        ])
        #expect(vad.positiveSpeechThreshold == 0.7 && vad.negativeSpeechThreshold == 0.7)
        #expect(vad.minSpeechFrames == 5 && vad.preSpeechPadFrames == 0 && vad.redemptionFrames == 40)
        #expect(vad.frameSamples == 240 && vad.model == .sohn)
        // Unset, the negative threshold is half the positive one.
        #expect(try parse(["VAD_POSITIVE_SPEECH_THRESHOLD": "0.2"]).negativeSpeechThreshold == 0.1)
        // Empty counts as unset.
        #expect(try parse(["VAD_MODEL": "", "VAD_FRAME_SAMPLES": ""]) == VADConfiguration())
    }

    @Test func badValuesNameTheVariable() {
        #expect(message(["VAD_POSITIVE_SPEECH_THRESHOLD": "1.5"]) == "VAD_POSITIVE_SPEECH_THRESHOLD: \"1.5\" is not a level between 0.0 and 1.0")
        #expect(message(["VAD_POSITIVE_SPEECH_THRESHOLD": "-0.1"]) == "VAD_POSITIVE_SPEECH_THRESHOLD: \"-0.1\" is not a level between 0.0 and 1.0")
        #expect(message(["VAD_POSITIVE_SPEECH_THRESHOLD": "0"]) == "VAD_POSITIVE_SPEECH_THRESHOLD: \"0\" must be above 0 (at 0 every frame is speech)")
        #expect(message(["VAD_NEGATIVE_SPEECH_THRESHOLD": "nan"]) == "VAD_NEGATIVE_SPEECH_THRESHOLD: \"nan\" is not a level between 0.0 and 1.0")
        #expect(message(["VAD_NEGATIVE_SPEECH_THRESHOLD": "0.6"]) == "VAD_NEGATIVE_SPEECH_THRESHOLD: \"0.6\" must not be above VAD_POSITIVE_SPEECH_THRESHOLD (0.5)")
        #expect(message(["VAD_POSITIVE_SPEECH_THRESHOLD": "0.2", "VAD_NEGATIVE_SPEECH_THRESHOLD": "0.25"])
                == "VAD_NEGATIVE_SPEECH_THRESHOLD: \"0.25\" must not be above VAD_POSITIVE_SPEECH_THRESHOLD (0.2)")
        #expect(message(["VAD_MIN_SPEECH_FRAMES": "0"]) == "VAD_MIN_SPEECH_FRAMES: \"0\" is not a whole number of frames in 1-100")
        #expect(message(["VAD_PRE_SPEECH_PAD_FRAMES": "101"]) == "VAD_PRE_SPEECH_PAD_FRAMES: \"101\" is not a whole number of frames in 0-100")
        #expect(message(["VAD_REDEMPTION_FRAMES": "8.5"]) == "VAD_REDEMPTION_FRAMES: \"8.5\" is not a whole number of frames in 1-500")
        #expect(message(["VAD_FRAME_SAMPLES": "512"]) == "VAD_FRAME_SAMPLES: \"512\" is not a whole number of samples in 80-256")
        #expect(message(["VAD_MODEL": "silero"])?.hasPrefix("VAD_MODEL: \"silero\" is not a built-in detector (only sohn") == true)
    }
}

@Suite struct VADMathTests {
    /// The real FFT (128-point complex + split) against a direct DFT of the windowed samples,
    /// with the window's start anywhere in the ring.
    @Test func realTransformMatchesDirectDFT() {
        var random = TestRandom(seed: 5)
        let ring = (0..<256).map { _ in Float(random.int(in: -20000...20000)) }
        var re = [Float](repeating: 0, count: 128), im = [Float](repeating: 0, count: 128)
        for start in [0, 1, 97, 255] {
            ring.withUnsafeBufferPointer { ring in
            VADMath.hann.withUnsafeBufferPointer { hann in
            VADMath.bitReversed.withUnsafeBufferPointer { reversed in
            VADMath.twiddleCos.withUnsafeBufferPointer { cos in
            VADMath.twiddleSin.withUnsafeBufferPointer { sin in
            re.withUnsafeMutableBufferPointer { re in
            im.withUnsafeMutableBufferPointer { im in
                VADMath.transform(ring: ring.baseAddress!, start: start, re: re.baseAddress!, im: im.baseAddress!,
                                  hann: hann.baseAddress!, reversed: reversed.baseAddress!,
                                  cos: cos.baseAddress!, sin: sin.baseAddress!)
                for k in [1, 6, 50, 64, 109, 127] {
                    var xRe = 0.0, xIm = 0.0
                    for n in 0..<256 {
                        let x = Double(hann[n]) * Double(ring[(start + n) & 255])
                        let angle = -2 * Double.pi * Double(k * n) / 256
                        xRe += x * Foundation_cos(angle)
                        xIm += x * Foundation_sin(angle)
                    }
                    let expected = xRe * xRe + xIm * xIm
                    let power = Double(VADMath.power(bin: k, re: re.baseAddress!, im: im.baseAddress!,
                                                     cos: cos.baseAddress!, sin: sin.baseAddress!))
                    #expect(abs(power - expected) <= 1e-4 * max(expected, 1e6), "bin \(k) start \(start): \(power) vs \(expected)")
                }
            }}}}}}}
        }
    }

    @Test func logAndExp() {
        for x: Float in [1e-30, 1e-6, 0.003, 0.5, 1, 1.5, 2, 10, 12345, 1e30] {
            #expect(abs(Double(VADMath.ln(x)) - log(Double(x))) <= 2e-6 * max(1, abs(log(Double(x)))))
        }
        #expect(VADMath.ln(0) == 0 && VADMath.ln(-1) == 0 && VADMath.ln(.nan) == 0 && VADMath.ln(.infinity) == 0)
        for x: Float in [-80, -20, -1, -0.1, 0, 0.3, 1, 5, 40] {
            let expected = Foundation_exp(Double(x))
            #expect(abs(Double(VADMath.exp(x)) - expected) <= 1e-5 * expected)
        }
        #expect(VADMath.exp(1000) == VADMath.exp(80) && VADMath.exp(-1000) == VADMath.exp(-80))
    }
}

private func Foundation_cos(_ x: Double) -> Double { cos(x) }
private func Foundation_sin(_ x: Double) -> Double { sin(x) }
private func Foundation_exp(_ x: Double) -> Double { exp(x) }
