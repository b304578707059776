/// Durations in fixed 10 µs buckets up to a bound (beyond it, the last bucket), plus the exact
/// maximum and mean: percentiles without keeping every sample, mergeable across calls.
public struct Histogram: Sendable {
    public static let bucketNanoseconds: UInt64 = 10_000
    private var buckets: [UInt32]
    public private(set) var count = 0
    public private(set) var maxNanoseconds: UInt64 = 0
    private var sum: Double = 0

    /// `limitNanoseconds`: values above it all count as the limit for percentiles.
    public init(limitNanoseconds: UInt64 = 2_000_000_000) {
        buckets = Array(repeating: 0, count: Int(limitNanoseconds / Self.bucketNanoseconds) + 1)
    }

    public mutating func add(_ nanoseconds: UInt64) {
        let index = min(Int(nanoseconds / Self.bucketNanoseconds), buckets.count - 1)
        buckets[index] &+= 1
        count += 1
        sum += Double(nanoseconds)
        if nanoseconds > maxNanoseconds { maxNanoseconds = nanoseconds }
    }

    public mutating func merge(_ other: Histogram) {
        precondition(other.buckets.count == buckets.count, "histograms of different bounds")
        for index in buckets.indices where other.buckets[index] != 0 { buckets[index] &+= other.buckets[index] }
        count += other.count
        sum += other.sum
        maxNanoseconds = max(maxNanoseconds, other.maxNanoseconds)
    }

    public var meanNanoseconds: Double { count == 0 ? 0 : sum / Double(count) }

    /// The upper edge of the bucket holding the `p`-quantile (0 < p ≤ 1), capped at the max.
    public func percentile(_ p: Double) -> UInt64 {
        guard count > 0 else { return 0 }
        let rank = max(1, Int((p * Double(count)).rounded(.up)))
        var seen = 0
        for (index, value) in buckets.enumerated() {
            seen += Int(value)
            if seen >= rank { return min(UInt64(index + 1) * Self.bucketNanoseconds, maxNanoseconds) }
        }
        return maxNanoseconds
    }
}
