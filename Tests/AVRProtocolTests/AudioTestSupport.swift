#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
@testable import AVRProtocol

/// Deterministic pseudo-random numbers (SplitMix64), so every test signal is reproducible.
struct TestRandom {
    private var state: UInt64
    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    mutating func unit() -> Double { Double(next() >> 11) / Double(1 << 53) }

    /// Uniform integer in `range`.
    mutating func int(in range: ClosedRange<Int>) -> Int {
        range.lowerBound + Int(next() % UInt64(range.count))
    }

    /// Roughly Gaussian (sum of 12 uniforms), unit variance.
    mutating func gaussian() -> Double {
        var sum = 0.0
        for _ in 0..<12 { sum += unit() }
        return sum - 6
    }
}

enum TestSignal {
    /// A sine of `amplitude` at `frequency`, `count` samples at `rate`.
    static func sine(frequency: Double, rate: Double, amplitude: Double, count: Int, phase: Double = 0) -> [Int16] {
        (0..<count).map { index in
            Int16((amplitude * sin(2 * Double.pi * frequency * Double(index) / rate + phase)).rounded())
        }
    }

    /// Something speech-like at 8 kHz: a voiced sound (harmonics of a wandering 100–160 Hz
    /// pitch, shaped by two formants) under a syllable-rate envelope, plus a little noise,
    /// scaled to `rmsDBFS`.
    static func speechLike(rmsDBFS: Double, count: Int, seed: UInt64 = 7) -> [Int16] {
        var random = TestRandom(seed: seed)
        var phase = 0.0
        var raw = [Double](repeating: 0, count: count)
        for index in 0..<count {
            let t = Double(index) / 8000
            let pitch = 130 + 30 * sin(2 * Double.pi * 2.7 * t)
            phase += 2 * Double.pi * pitch / 8000
            var value = 0.0
            for harmonic in 1...25 {
                let frequency = Double(harmonic) * pitch
                guard frequency < 3800 else { break }
                let formants = 1 + 3 * exp(-pow((frequency - 700) / 200, 2)) + 2 * exp(-pow((frequency - 1200) / 300, 2))
                value += formants / Double(harmonic) * sin(Double(harmonic) * phase)
            }
            let envelope = 0.15 + 0.85 * (0.5 - 0.5 * cos(2 * Double.pi * 4 * t))
            raw[index] = value * envelope + 0.01 * random.gaussian()
        }
        let rms = (raw.reduce(0) { $0 + $1 * $1 } / Double(count)).squareRoot()
        let scale = 32768 * pow(10, rmsDBFS / 20) / rms
        return raw.map { Int16(clamping: Int(($0 * scale).rounded())) }
    }

    /// White-ish noise at `rmsDBFS`.
    static func noise(rmsDBFS: Double, count: Int, seed: UInt64 = 11) -> [Int16] {
        var random = TestRandom(seed: seed)
        let sigma = 32768 * pow(10, rmsDBFS / 20)
        return (0..<count).map { _ in Int16(clamping: Int((random.gaussian() * sigma).rounded())) }
    }

    static func littleEndianBytes(_ samples: [Int16]) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(samples.count * 2)
        for sample in samples {
            let bits = UInt16(bitPattern: sample)
            bytes.append(UInt8(truncatingIfNeeded: bits))
            bytes.append(UInt8(truncatingIfNeeded: bits >> 8))
        }
        return bytes
    }

    static func samples(fromLittleEndian bytes: [UInt8]) -> [Int16] {
        stride(from: 0, to: bytes.count - 1, by: 2).map {
            Int16(bitPattern: UInt16(bytes[$0]) | UInt16(bytes[$0 + 1]) << 8)
        }
    }

    /// Amplitude and residual of the best fit `a·sin + b·cos` at `frequency`: the residual RMS
    /// relative to the amplitude says whether the signal is that tone and nothing else.
    static func fit(_ samples: ArraySlice<Int16>, frequency: Double, rate: Double) -> (amplitude: Double, residualRMS: Double) {
        var sinSum = 0.0, cosSum = 0.0
        for (offset, sample) in samples.enumerated() {
            let angle = 2 * Double.pi * frequency * Double(offset) / rate
            sinSum += Double(sample) * sin(angle)
            cosSum += Double(sample) * cos(angle)
        }
        let n = Double(samples.count)
        let a = 2 * sinSum / n, b = 2 * cosSum / n
        var residual = 0.0
        for (offset, sample) in samples.enumerated() {
            let angle = 2 * Double.pi * frequency * Double(offset) / rate
            let error = Double(sample) - (a * sin(angle) + b * cos(angle))
            residual += error * error
        }
        return ((a * a + b * b).squareRoot(), (residual / n).squareRoot())
    }

    static func rms(_ samples: ArraySlice<Int16>) -> Double {
        (samples.reduce(0.0) { $0 + Double($1) * Double($1) } / Double(max(samples.count, 1))).squareRoot()
    }
}
