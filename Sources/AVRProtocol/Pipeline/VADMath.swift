/// Numeric helpers and tables of the VAD, without Foundation or libm: the natural logarithm
/// and exponential the hot path needs (accurate to ~1e-6 relative, far below what a speech
/// decision can see), and the FFT/window tables, computed once per process.
enum VADMath {
    static let fftSize = 256
    static let fftLog2 = 8

    /// Natural logarithm of a positive finite `x` (0 for anything else).
    @inline(__always)
    static func ln(_ x: Float) -> Float {
        guard x > 0, x.isFinite else { return 0 }
        // x = 2^e · m, m in [1, 2); ln m = 2 atanh(t), t = (m-1)/(m+1) in [0, 1/3).
        let e = Float(x.exponent)
        let m = x.significand
        let t = (m - 1) / (m + 1)
        let t2 = t * t
        let series = t * (2 + t2 * (2.0 / 3 + t2 * (2.0 / 5 + t2 * (2.0 / 7 + t2 * (2.0 / 9)))))
        return e * 0.693_147_18 + series
    }

    /// e^x, clamped to [e^-80, e^80].
    @inline(__always)
    static func exp(_ x: Float) -> Float {
        let clamped = min(max(x, -80), 80)
        let n = (clamped * 1.442_695_04).rounded()
        let r = clamped - n * 0.693_147_18
        // Taylor to r^7 on |r| <= ln2/2.
        let p = 1 + r * (1 + r * (0.5 + r * (1.0 / 6 + r * (1.0 / 24 + r * (1.0 / 120 + r * (1.0 / 720 + r * (1.0 / 5040)))))))
        return Float(sign: .plus, exponent: Int(n), significand: p)
    }

    /// sin and cos of `angle` (radians, |angle| < 7) by their Taylor series in Double; used
    /// only to build the tables.
    static func sinCos(_ angle: Double) -> (sin: Double, cos: Double) {
        var sinSum = 0.0, cosSum = 0.0
        var term = 1.0  // angle^n / n!
        for n in 0..<40 {
            switch n % 4 {
            case 0: cosSum += term
            case 1: sinSum += term
            case 2: cosSum -= term
            default: sinSum -= term
            }
            term *= angle / Double(n + 1)
        }
        return (sinSum, cosSum)
    }

    private static let twoPi = 6.283_185_307_179_586

    /// Periodic Hann window of `fftSize` samples.
    static let hann: [Float] = (0..<fftSize).map { n in
        Float(0.5 - 0.5 * sinCos(twoPi * Double(n) / Double(fftSize)).cos)
    }

    /// cos and sin of 2πk/fftSize for k < fftSize/2 (the FFT's twiddle factors).
    static let twiddleCos: [Float] = (0..<fftSize / 2).map { Float(sinCos(twoPi * Double($0) / Double(fftSize)).cos) }
    static let twiddleSin: [Float] = (0..<fftSize / 2).map { Float(sinCos(twoPi * Double($0) / Double(fftSize)).sin) }

    /// The real 256-point transform runs as a 128-point complex one (even samples real, odd
    /// imaginary) plus a split step: half the work of a 256-point complex FFT.
    static let halfSize = fftSize / 2
    static let halfLog2 = fftLog2 - 1

    /// Bit-reversed index (7 bits) of each position of the half-size transform.
    static let bitReversed: [UInt8] = (0..<halfSize).map { index in
        var reversed = 0
        for bit in 0..<halfLog2 where index & (1 << bit) != 0 { reversed |= 1 << (halfLog2 - 1 - bit) }
        return UInt8(reversed)
    }

    /// Sum of the squared window: the mean |X_k|^2 of unit-variance white noise.
    static let windowPower: Float = hann.reduce(0) { $0 + $1 * $1 }

    /// Windows the 256 samples of `ring` (oldest at `start`, wrapping) and transforms them:
    /// afterwards `re`/`im` (128 each) hold the half-size transform that `power(bin:)` splits.
    @inline(__always)
    static func transform(ring: UnsafePointer<Float>, start: Int, re: UnsafeMutablePointer<Float>,
                          im: UnsafeMutablePointer<Float>, hann: UnsafePointer<Float>, reversed: UnsafePointer<UInt8>,
                          cos: UnsafePointer<Float>, sin: UnsafePointer<Float>) {
        let mask = fftSize - 1
        for n in 0..<halfSize {
            let target = Int(reversed[n])
            re[target] = hann[2 * n] * ring[(start + 2 * n) & mask]
            im[target] = hann[2 * n + 1] * ring[(start + 2 * n + 1) & mask]
        }
        // Radix-2 decimation in time over 128 points; W_L^k = table[k · 256/L].
        var length = 2
        while length <= halfSize {
            let half = length / 2
            let step = fftSize / length
            var base = 0
            while base < halfSize {
                for k in 0..<half {
                    let wr = cos[k * step], wi = -sin[k * step]
                    let a = base + k, b = a + half
                    let tr = wr * re[b] - wi * im[b]
                    let ti = wr * im[b] + wi * re[b]
                    re[b] = re[a] - tr
                    im[b] = im[a] - ti
                    re[a] += tr
                    im[a] += ti
                }
                base += length
            }
            length *= 2
        }
    }

    /// |X_k|² of the real 256-point transform, for 1 ≤ k ≤ 127, from the half-size one Z:
    /// X_k = E_k + W^k·O_k with E_k = (Z_k + Z*_{128−k})/2, O_k = (Z_k − Z*_{128−k})/2i.
    @inline(__always)
    static func power(bin k: Int, re: UnsafePointer<Float>, im: UnsafePointer<Float>,
                      cos: UnsafePointer<Float>, sin: UnsafePointer<Float>) -> Float {
        let aRe = re[k], aIm = im[k], bRe = re[halfSize - k], bIm = im[halfSize - k]
        let evenRe = (aRe + bRe) * 0.5, evenIm = (aIm - bIm) * 0.5
        let oddRe = (aIm + bIm) * 0.5, oddIm = (bRe - aRe) * 0.5
        let c = cos[k], s = sin[k]
        let xRe = evenRe + c * oddRe + s * oddIm
        let xIm = evenIm + c * oddIm - s * oddRe
        return xRe * xRe + xIm * xIm
    }
}
