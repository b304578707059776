/// The audio the agent played, kept so that each caller frame can be paired with what was on
/// the line when it was heard: the reference of the echo canceller. Pure and allocation-free
/// after `init`.
///
/// Playback and caller audio run on two clocks (the pacing ticks, Asterisk's frames) that agree
/// on the rate but not on the phase, and arrive with jitter. So the read position advances by
/// exactly one caller frame per caller frame (the canceller's filter sees a continuous
/// signal) and is set again only when it would read past the newest played frame (less the
/// bulk delay), or lags the frame before it by more than `slackSamples`.
package struct EchoReference: Sendable {
    private var ring: [Int16]
    private let mask: Int
    /// Samples written since the start.
    private var written = 0
    /// Position (in samples since the start) of the next read; nil before the first.
    private var readPosition: Int?
    /// Drift tolerated before the read position is set again.
    package let slackSamples: Int
    /// Times the read position was set again after drifting (for logs and tests).
    package private(set) var realignments = 0

    /// `capacitySamples` is rounded up to a power of two; it must hold the longest bulk delay plus
    /// a frame and the slack.
    package init(capacitySamples: Int, slackSamples: Int) {
        var capacity = 1
        while capacity < capacitySamples { capacity <<= 1 }
        ring = [Int16](repeating: 0, count: capacity)
        mask = capacity - 1
        self.slackSamples = slackSamples
    }

    /// Audio that went out to the caller, in order (silence included: the line never stops).
    package mutating func played(_ samples: UnsafeBufferPointer<Int16>) {
        let mask = self.mask
        var position = written
        ring.withUnsafeMutableBufferPointer { ring in
            for sample in samples {
                ring[position & mask] = sample
                position += 1
            }
        }
        written = position
    }

    /// `count` samples of silence went out to the caller where nothing was sent (a hole in the
    /// played audio, see `LineTimeline`): written as zeros, so the read position stays on the
    /// line's clock rather than being set again a frame off. At most the ring's length counts.
    package mutating func silence(_ count: Int) {
        guard count > 0 else { return }
        let mask = self.mask
        let position = written
        let length = min(count, ring.count)
        ring.withUnsafeMutableBufferPointer { ring in
            for index in 0..<length { ring[(position + count - length + index) & mask] = 0 }
        }
        written = position + count
    }

    /// Forget the read position: the next read starts where the delay says (after the bulk
    /// delay changed).
    package mutating func realign() { readPosition = nil }

    /// The reference for the next caller frame of `out.count` samples: what was played
    /// `delaySamples` before the frame before the newest `out.count` samples. Samples never written (or already
    /// overwritten) read as silence.
    package mutating func next(into out: UnsafeMutableBufferPointer<Int16>, delaySamples: Int) {
        let count = out.count
        // One frame behind the newest played frame: a caller frame may arrive just before or
        // just after the tick that plays "its" frame; reading up to one frame ahead of the
        // target stays within what was played, so jitter of a frame causes no jump.
        let target = written - 2 * count - delaySamples
        var position: Int
        if let current = readPosition, current - target <= count, target - current <= slackSamples {
            position = current
        } else {
            if readPosition != nil { realignments += 1 }
            position = target
        }
        let mask = self.mask, written = self.written, oldest = written - ring.count
        ring.withUnsafeBufferPointer { ring in
            for index in 0..<count {
                let at = position + index
                out[index] = at >= max(0, oldest) && at < written ? ring[at & mask] : 0
            }
        }
        position += count
        readPosition = position
    }
}
