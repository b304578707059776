/// Inter-arrival jitter of a stream of audio frames: how far the gap before each frame strays
/// from the duration of the frame before it (a 20 ms frame should be followed 20 ms later).
/// Frames that arrive together (one read holding two frames) show as one frame's worth of
/// jitter, which is what a jitter buffer downstream would see. Times are monotonic nanoseconds.
package struct ArrivalJitter: Sendable {
    private var lastArrival: UInt64 = 0
    private var expectedGap: UInt64 = 0
    private var started = false

    package init() {}

    /// A frame lasting `duration` arrived at `now`: |gap − previous frame's duration|, nil
    /// for the first frame (there is no gap yet).
    package mutating func observe(at now: UInt64, duration: UInt64) -> UInt64? {
        defer {
            lastArrival = now
            expectedGap = duration
            started = true
        }
        guard started else { return nil }
        let gap = now >= lastArrival ? now - lastArrival : 0
        return gap > expectedGap ? gap - expectedGap : expectedGap - gap
    }

    /// Nanoseconds of audio in `bytes` of 16-bit samples at `sampleRate`.
    package static func linearDuration(bytes: Int, sampleRate: Int) -> UInt64 {
        UInt64(bytes / 2) * 1_000_000_000 / UInt64(max(sampleRate, 1))
    }

    /// Nanoseconds of audio in `bytes` of 8 kHz G.711 (one byte a sample).
    package static func g711Duration(bytes: Int) -> UInt64 { UInt64(bytes) * 125_000 }
}
