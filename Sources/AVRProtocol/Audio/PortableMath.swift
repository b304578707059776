/// Rounding and square roots without libm.
///
/// `Double.rounded()` and `squareRoot()` compile to calls into libm (`round`, `sqrt`) on
/// x86-64 Linux, and an executable whose modules never import Glibc is not linked against
/// libm — so this module, which uses only the standard library, does these itself.
enum PortableMath {
    /// Nearest integer, halves away from zero (like `rounded()`); `value` must fit in Int.
    @inline(__always)
    static func roundedToInt(_ value: Double) -> Int {
        Int(value >= 0 ? value + 0.5 : value - 0.5)
    }

    /// Nearest Int16, halves away from zero, saturating at the type's limits.
    @inline(__always)
    static func roundedToInt16(_ value: Float) -> Int16 {
        if value >= 32766.5 { return .max }
        if value <= -32767.5 { return .min }
        return Int16(value >= 0 ? value + 0.5 : value - 0.5)
    }

    /// √x for finite x ≥ 0 (0 otherwise), by Newton's method from a power-of-two guess;
    /// correct to the last bit or one ulp, which is all an RMS needs.
    static func squareRoot(_ x: Double) -> Double {
        guard x > 0, x.isFinite else { return 0 }
        var guess = Double(sign: .plus, exponent: x.exponent / 2, significand: 1)
        for _ in 0..<8 {
            guess = 0.5 * (guess + x / guess)
        }
        return guess
    }
}
