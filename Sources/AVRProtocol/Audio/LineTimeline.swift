/// Where the audio sent to the caller has holes: the line's own clock, kept from the times the
/// frames went out. Each frame plays from when it was sent or when the one before it has
/// finished, whichever is later. A tick that sends nothing (a held slot, see
/// `PlayoutController`) leaves the line silent: once a whole frame's time has passed since what
/// was sent finished, that frame of silence is counted and the line's clock moves on by it; a
/// frame sent a whole frame or more after the line fell silent (ticks a stalled loop skipped)
/// counts the whole frames before it the same way. What is left, under a frame (a frame a held
/// tick waited a few milliseconds for, timer jitter), is not counted: the far end's buffer
/// absorbs it.
///
/// The echo canceller's reference writes the silence it is told about, so that it stays on the
/// line's clock: without it, the reference loses a frame against the line at each such hole
/// and the measured echo delay steps. Pure.
package struct LineTimeline: Sendable {
    package let nanosecondsPerSample: UInt64
    package let frameSamples: Int
    /// The most silence counted for one hole (a longer one holds nothing a reference could
    /// still use).
    package let maximumGapSamples: Int
    /// When what was sent so far has finished playing; nil before the first frame.
    private var freeAt: UInt64?

    package init(nanosecondsPerSample: UInt64 = 125_000, frameSamples: Int = 160, maximumGapSamples: Int = 8000) {
        self.nanosecondsPerSample = nanosecondsPerSample
        self.frameSamples = frameSamples
        self.maximumGapSamples = maximumGapSamples
    }

    /// The whole frames of silence from when the line fell silent to `time`, in samples; the
    /// line's clock moves on by them.
    private mutating func silence(until time: UInt64) -> Int {
        guard let free = freeAt, time > free else { return 0 }
        let frameNanoseconds = UInt64(frameSamples) &* nanosecondsPerSample
        let frames = (time - free) / frameNanoseconds
        guard frames > 0 else { return 0 }
        freeAt = free &+ frames &* frameNanoseconds
        return min(Int(frames) * frameSamples, maximumGapSamples)
    }

    /// A tick at `time` (ns) sent nothing: the silence, in samples, the line has had since
    /// the last count (whole frames; 0 for none).
    package mutating func nothingSent(at time: UInt64) -> Int {
        silence(until: time)
    }

    /// A frame of `samples` went out right behind the one before it (a catch-up frame of a
    /// loop that fell behind): no silence before it.
    package mutating func sentBehind(samples: Int) {
        guard let free = freeAt else { return }
        freeAt = free &+ UInt64(samples) &* nanosecondsPerSample
    }

    /// A frame of `samples` went out at `time` (ns): the silence, in samples, the line had
    /// just before it and that was not counted yet (whole frames; 0 for none).
    package mutating func sent(samples: Int, at time: UInt64) -> Int {
        let gap = silence(until: time)
        let start = max(time, freeAt ?? time)
        freeAt = start &+ UInt64(samples) &* nanosecondsPerSample
        return gap
    }
}
