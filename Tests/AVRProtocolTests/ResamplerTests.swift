#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Testing
@testable import AVRProtocol

@Suite struct ResamplerTests {
    static let rates = [12000, 16000, 24000, 32000, 44100, 48000, 96000, 192000]

    static func resample(_ samples: [Int16], rate: Int) -> [Int16] {
        var resampler = Resampler(inputRate: rate)!
        var output: [Int16] = []
        TestSignal.littleEndianBytes(samples).withUnsafeBytes { resampler.process($0, appendingTo: &output) }
        return output
    }

    static func decibels(_ ratio: Double) -> Double { 20 * log10(ratio) }

    @Test(arguments: rates)
    func oneKilohertzKeepsAmplitudeAndFrequency(rate: Int) {
        let input = TestSignal.sine(frequency: 1000, rate: Double(rate), amplitude: 10000, count: rate / 2)
        let output = Self.resample(input, rate: rate)
        // Half a second in gives 4000 samples out (± the filter's start).
        #expect(abs(output.count - 4000) <= 1)
        // Skip the filter's warm-up (its delay is well under 20 ms), fit over whole periods.
        let steady = output[400..<3600]
        let (amplitude, residual) = TestSignal.fit(steady, frequency: 1000, rate: 8000)
        #expect(abs(Self.decibels(amplitude / 10000)) <= 1, "amplitude \(amplitude) at \(rate)")
        // Nothing but 1 kHz: the residual is quantisation-level.
        #expect(residual < 10, "residual \(residual) at \(rate)")
    }

    @Test(arguments: [16000, 44100, 48000])
    func passbandEdgeIsFlat(rate: Int) {
        for frequency in [300.0, 3000.0] {
            let input = TestSignal.sine(frequency: frequency, rate: Double(rate), amplitude: 10000, count: rate / 2)
            let output = Self.resample(input, rate: rate)
            let (amplitude, _) = TestSignal.fit(output[400..<3600], frequency: frequency, rate: 8000)
            #expect(abs(Self.decibels(amplitude / 10000)) <= 1, "\(frequency) Hz at \(rate): \(amplitude)")
        }
    }

    @Test func sixKilohertzAt48kHzIsRemoved() {
        // 6 kHz would fold onto 2 kHz.
        let input = TestSignal.sine(frequency: 6000, rate: 48000, amplitude: 20000, count: 24000)
        let output = Self.resample(input, rate: 48000)
        let inputRMS = 20000 / 2.0.squareRoot()
        let attenuation = Self.decibels(TestSignal.rms(output[400...]) / inputRMS)
        #expect(attenuation <= -40, "only \(attenuation) dB")
    }

    @Test func aliasesAreRemovedAtEveryRate() {
        for rate in Self.rates {
            // Tones between 4.6 kHz and the input Nyquist all fold into the telephone band.
            for frequency in [4600.0, 5000.0, Double(rate) / 2 - 900] {
                let input = TestSignal.sine(frequency: frequency, rate: Double(rate), amplitude: 20000, count: rate / 4)
                let output = Self.resample(input, rate: rate)
                let attenuation = Self.decibels(TestSignal.rms(output[400...]) / (20000 / 2.0.squareRoot()))
                #expect(attenuation <= -40, "\(frequency) Hz at \(rate): \(attenuation) dB")
            }
        }
    }

    @Test(arguments: rates)
    func streamingInAnyChunksEqualsOneShot(rate: Int) {
        var random = TestRandom(seed: UInt64(rate))
        let input = TestSignal.speechLike(rmsDBFS: -12, count: rate / 4, seed: 3)
        let bytes = TestSignal.littleEndianBytes(input)
        let oneShot = Self.resample(input, rate: rate)

        var resampler = Resampler(inputRate: rate)!
        var streamed: [Int16] = []
        var start = 0
        while start < bytes.count {
            // Includes 1-byte and odd-sized chunks that split samples.
            let length = min(random.int(in: 1...(rate / 25)), bytes.count - start)
            bytes[start..<(start + length)].withUnsafeBytes { resampler.process($0, appendingTo: &streamed) }
            start += length
        }
        #expect(streamed.count == oneShot.count)
        // Bit-identical; report only where they part, not both arrays.
        let firstDifference = zip(streamed, oneShot).enumerated().first { $0.element.0 != $0.element.1 }?.offset
        #expect(firstDifference == nil, "streamed output differs from sample \(firstDifference ?? -1)")
    }

    @Test func twentyMillisecondFramesHaveNoClicks() {
        // 1 kHz at 44.1 kHz sent as 20 ms frames of 882 samples: the output is the same
        // clean tone across frame boundaries.
        let input = TestSignal.sine(frequency: 1000, rate: 44100, amplitude: 12000, count: 44100)
        let bytes = TestSignal.littleEndianBytes(input)
        var resampler = Resampler(inputRate: 44100)!
        var output: [Int16] = []
        for frame in 0..<50 {
            bytes[(frame * 1764)..<((frame + 1) * 1764)].withUnsafeBytes { resampler.process($0, appendingTo: &output) }
        }
        #expect(abs(output.count - 8000) <= 1)
        let (_, residual) = TestSignal.fit(output[400..<7600], frequency: 1000, rate: 8000)
        #expect(residual < 5, "residual \(residual)")
    }

    @Test func littleEndianOutputAndReset() {
        let input = TestSignal.sine(frequency: 700, rate: 16000, amplitude: 9000, count: 3200)
        let bytes = TestSignal.littleEndianBytes(input)
        var resampler = Resampler(inputRate: 16000)!
        var samples: [Int16] = []
        bytes.withUnsafeBytes { resampler.process($0, appendingTo: &samples) }
        resampler.reset()
        var littleEndian: [UInt8] = []
        bytes.withUnsafeBytes { resampler.process($0, appendingLittleEndianTo: &littleEndian) }
        #expect(TestSignal.samples(fromLittleEndian: littleEndian) == samples)
    }

    @Test func unsupportedRates() {
        #expect(Resampler(inputRate: 8000) == nil)
        #expect(Resampler(inputRate: 11025) == nil)
        #expect(Resampler(inputRate: 44100)?.filter.interpolation == 80)
        #expect(Resampler(inputRate: 44100)?.filter.decimation == 441)
        #expect(Resampler(inputRate: 12000)?.filter.interpolation == 2)
        #expect(ResamplerFilter.shared(inputRate: 48000) === ResamplerFilter.shared(inputRate: 48000))
    }

    @Test func fullScaleInputSaturatesInsteadOfWrapping() {
        // A full-scale square wave overshoots after filtering (Gibbs); it must clamp.
        let input: [Int16] = (0..<16000).map { ($0 / 8) % 2 == 0 ? .max : .min }
        let output = Self.resample(input, rate: 16000)
        #expect(output.contains(.max) || output.contains(.min))
        // No wrap-around: a sample near +full scale is never followed by one near -full scale
        // unless the signal really swings (the square wave's period is 16 samples → 8 out).
        for index in 1..<output.count {
            #expect(abs(Int(output[index]) - Int(output[index - 1])) < 65535)
        }
    }

    @Test func filterDesignMathMatchesLibm() {
        for step in -2000...2000 {
            let x = Double(step) * 0.0173
            #expect(abs(FilterDesign.sin(x) - sin(x)) < 1e-12, "sin(\(x))")
            #expect(abs(FilterDesign.cos(x) - cos(x)) < 1e-12, "cos(\(x))")
        }
        #expect(abs(FilterDesign.besselI0(0) - 1) < 1e-15)
        #expect(abs(FilterDesign.besselI0(1) - 1.2660658777520082) < 1e-13)
        #expect(abs(FilterDesign.besselI0(6.76) / 135.6) - 1 < 0.01)
        for value in [0.0, 1e-300, 2, 3, 1e-7, 12345.678, 1e300, 32768.0 * 32768] {
            #expect(abs(PortableMath.squareRoot(value) - value.squareRoot()) <= value.squareRoot().ulp, "√\(value)")
        }
        #expect(PortableMath.squareRoot(-1) == 0)
        #expect(PortableMath.roundedToInt(2.5) == 3 && PortableMath.roundedToInt(-2.5) == -3)
        #expect(PortableMath.roundedToInt(2.49) == 2 && PortableMath.roundedToInt(-0.4) == 0)
        #expect(PortableMath.roundedToInt16(40000) == .max && PortableMath.roundedToInt16(-40000) == .min)
        #expect(PortableMath.roundedToInt16(32766.6) == .max && PortableMath.roundedToInt16(-1.5) == -2)
    }
}
