/// When to send the next 20 ms frame, on a grid fixed at the start of the stream.
///
/// Deadlines are `start + k × interval`, computed from the frame count, never from the time
/// the loop happened to wake up, so jittery wake-ups cannot accumulate into drift over a long
/// call. When the loop falls far behind (a stall), sending every missed frame at once would
/// only burst audio that Asterisk plays late anyway; the clock sends at most ``maxCatchUp``,
/// skips the rest, and stays on the same grid. Times are monotonic nanoseconds (`uv_hrtime`).
package struct PacingClock: Sendable {
    /// Nanoseconds between frames (20 ms).
    package let interval: UInt64
    /// The most frames sent in one wake-up after being late.
    package let maxCatchUp: Int
    /// When the next frame is due.
    package private(set) var nextDeadline: UInt64
    /// Frames handed out by ``framesDue(now:)``.
    package private(set) var framesSent: UInt64 = 0
    /// Frames skipped to resynchronise after stalls.
    package private(set) var framesSkipped: UInt64 = 0

    /// The first frame is due at `start`.
    package init(start: UInt64, interval: UInt64 = 20_000_000, maxCatchUp: Int = 3) {
        precondition(interval > 0 && maxCatchUp > 0)
        self.interval = interval
        self.maxCatchUp = maxCatchUp
        self.nextDeadline = start
    }

    /// How many frames to send now; advances the deadline past every frame due at `now`.
    package mutating func framesDue(now: UInt64) -> Int {
        guard now >= nextDeadline else { return 0 }
        let due = (now - nextDeadline) / interval + 1
        nextDeadline += due * interval
        if due > UInt64(maxCatchUp) {
            framesSkipped += due - UInt64(maxCatchUp)
            framesSent += UInt64(maxCatchUp)
            return maxCatchUp
        }
        framesSent += due
        return Int(due)
    }

    /// Nanoseconds from `now` until the next deadline (0 if it has passed): the timer delay.
    package func delayUntilNextDeadline(now: UInt64) -> UInt64 {
        nextDeadline > now ? nextDeadline - now : 0
    }
}
