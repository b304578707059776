/// What we know of the queue Asterisk's WebSocket channel keeps of our frames, for sending
/// agent audio ahead (`WS_MEDIA_PACING=asterisk`): the channel takes every frame into its
/// queue, plays one per 20 ms timer tick, says `MEDIA_XOFF` when the queue reaches 900 and
/// `MEDIA_XON` when it is below 800 again, and ignores frames that arrive while it holds 1000.
///
/// The channel does not report its queue as it goes, so its length is estimated from what was
/// sent: each frame plays for one interval after the frame before it, or from when it was sent
/// if the queue had run dry. The estimate is a bound we keep ourselves (``limitFrames``, under
/// the channel's 1000), because a burst sent in one go reaches the channel before its
/// `MEDIA_XOFF` reaches us; `MEDIA_XOFF` itself stops the sending whatever the estimate says
/// (a channel whose timer stalled plays slower than we count). Pure: times are monotonic
/// nanoseconds passed in.
package struct ChannelQueuePacer: Sendable, Equatable {
    /// How long the channel plays one frame (20 ms).
    package let interval: UInt64
    /// The most frames we let the estimate reach: room for what is in flight when the channel
    /// says `MEDIA_XOFF` (at 900) before it starts ignoring frames (at 1000).
    package let limitFrames: Int
    /// When the last frame sent will have played, by the estimate (0 before any).
    package private(set) var playedUntil: UInt64 = 0
    /// `MEDIA_XOFF` received, `MEDIA_XON` not yet.
    package private(set) var paused = false

    package init(interval: UInt64 = 20_000_000, limitFrames: Int = 950) {
        self.interval = interval
        self.limitFrames = limitFrames
    }

    /// How much of what we sent the channel still has to play at `now` (nanoseconds).
    package func held(at now: UInt64) -> UInt64 {
        playedUntil > now ? playedUntil - now : 0
    }

    /// Frames the channel holds at `now`, by the estimate (a frame partly played counts).
    package func queuedFrames(at now: UInt64) -> Int {
        Int((held(at: now) + interval - 1) / interval)
    }

    /// A frame may be sent at `now`: no `MEDIA_XOFF` in force and the estimate under the limit.
    package func mayWrite(at now: UInt64) -> Bool {
        !paused && queuedFrames(at: now) < limitFrames
    }

    /// The channel will play less than a frame of ours after `now`: what it holds is the frame
    /// it is playing at most, as when we pace the frames ourselves.
    package func nearlyDrained(at now: UInt64) -> Bool {
        held(at: now) < interval
    }

    /// A frame was sent at `now`.
    package mutating func sent(at now: UInt64) {
        playedUntil = max(playedUntil, now) &+ interval
    }

    /// `FLUSH_MEDIA` was sent at `now`: the channel drops what it holds.
    package mutating func flushed(at now: UInt64) {
        playedUntil = min(playedUntil, now)
    }

    package mutating func xoff() { paused = true }
    package mutating func xon() { paused = false }
}
