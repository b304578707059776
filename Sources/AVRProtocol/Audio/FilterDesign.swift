/// The little numerics the resampler's filter design needs, written here because the module
/// uses only the standard library (no libm, see ``PortableMath``). Accuracy is far beyond what a 16-bit FIR needs.
enum FilterDesign {
    /// sin(x) for |x| up to ~1e6: reduce by multiples of π to [-π/2, π/2], then the Taylor
    /// series to x¹⁹ (error below 1e-15 there).
    static func sin(_ x: Double) -> Double {
        let turns = Double(PortableMath.roundedToInt(x / Double.pi))
        let reduced = x - turns * Double.pi
        let square = reduced * reduced
        var term = reduced
        var sum = reduced
        var n = 1.0
        for _ in 0..<9 {
            term *= -square / ((n + 1) * (n + 2))
            sum += term
            n += 2
        }
        return Int(turns) % 2 == 0 ? sum : -sum
    }

    /// cos(x) = sin(x + π/2).
    static func cos(_ x: Double) -> Double { sin(x + Double.pi / 2) }

    /// sin(πx)/(πx), 1 at 0.
    static func sinc(_ x: Double) -> Double {
        x == 0 ? 1 : sin(Double.pi * x) / (Double.pi * x)
    }

    /// The modified Bessel function of the first kind, order 0 (Kaiser window), by its series.
    static func besselI0(_ x: Double) -> Double {
        let quarterSquare = x * x / 4
        var term = 1.0
        var sum = 1.0
        var k = 1.0
        while term > sum * 1e-17 {
            term *= quarterSquare / (k * k)
            sum += term
            k += 1
        }
        return sum
    }

    /// A Kaiser-windowed sinc low-pass of `length` taps: `cutoff` is the -6 dB frequency as a
    /// fraction of the sample rate; the DC gain is `gain`.
    static func lowPass(length: Int, cutoff: Double, beta: Double, gain: Double) -> [Double] {
        let centre = Double(length - 1) / 2
        let windowNorm = besselI0(beta)
        var taps = (0..<length).map { index -> Double in
            let offset = Double(index) - centre
            let ratio = centre > 0 ? offset / centre : 0
            let window = besselI0(beta * PortableMath.squareRoot(max(0, 1 - ratio * ratio))) / windowNorm
            return 2 * cutoff * sinc(2 * cutoff * offset) * window
        }
        let sum = taps.reduce(0, +)
        for index in taps.indices { taps[index] *= gain / sum }
        return taps
    }
}
