/// When a WebSocket client pings its server and when it gives up on it, as a pure schedule:
/// the caller passes the time in and arms one timer for the delay each step returns.
///
/// A ping goes out every `interval` ms while the connection is open; if no frame at all (its
/// pong, or anything else) arrives within `timeout` ms of a ping, the peer is taken for dead.
/// A TCP connection whose peer hangs (a stalled process, a dropped route, a NAT that forgot
/// the flow) shows nothing on its own: without this a call would stay up, silent, forever.
///
/// Per received frame the cost is one stored flag (`heardFromPeer`); the clock is read only
/// when the timer fires.
package struct WebSocketLiveness: Sendable {
    package struct Settings: Sendable, Equatable {
        /// Between pings, ms; 0: no pings and no liveness check.
        package var interval: UInt64
        /// After a ping, how long any frame may take to arrive, ms.
        package var timeout: UInt64

        package init(interval: UInt64, timeout: UInt64) {
            self.interval = interval
            self.timeout = timeout
        }

        package static let off = Settings(interval: 0, timeout: 0)
        package var isOn: Bool { interval > 0 }
    }

    /// What the timer's owner does now.
    package enum Step: Equatable, Sendable {
        /// Send a ping, then wake again in this many ms.
        case sendPing(wakeIn: UInt64)
        /// Nothing to do yet: wake again in this many ms.
        case sleep(UInt64)
        /// No frame arrived within `timeout` ms of the last ping.
        case noAnswer(milliseconds: UInt64)
    }

    private enum Phase: Sendable {
        case waiting(pingDue: UInt64)
        case awaitingAnswer(pingSentAt: UInt64)
    }

    package let settings: Settings
    private var phase: Phase
    private var heard = false

    /// The connection opened at `now`; the first ping is due one interval later.
    package init(settings: Settings, openedAt now: UInt64) {
        self.settings = settings
        phase = .waiting(pingDue: now + settings.interval)
    }

    /// The first wake-up, ms from opening; nil when pings are off.
    package var firstWake: UInt64? { settings.isOn ? settings.interval : nil }

    /// Any frame from the peer: it is alive.
    @inline(__always)
    package mutating func heardFromPeer() { heard = true }

    /// The timer fired at `now` (it may be late; never trusted to be exact).
    package mutating func wake(now: UInt64) -> Step {
        switch phase {
        case .waiting(let due):
            if now < due { return .sleep(due - now) }
            return ping(now)
        case .awaitingAnswer(let sentAt):
            if heard {
                let due = sentAt + settings.interval
                if now >= due { return ping(now) }
                phase = .waiting(pingDue: due)
                return .sleep(due - now)
            }
            let deadline = sentAt + settings.timeout
            if now < deadline { return .sleep(deadline - now) }
            return .noAnswer(milliseconds: settings.timeout)
        }
    }

    private mutating func ping(_ now: UInt64) -> Step {
        phase = .awaitingAnswer(pingSentAt: now)
        heard = false
        return .sendPing(wakeIn: settings.timeout)
    }
}

/// Counts the pings a peer sends and calls a flood a protocol abuse: every ping asks for a
/// pong, so a peer pinging without end makes us write without end. Real services ping every
/// few seconds; more than `maxPerSecond` pings within one second (a fixed window that starts
/// at the first ping after the previous window) is no keep-alive.
package struct WebSocketPingFloodGuard: Sendable {
    /// 50 a second: three orders of magnitude above any keep-alive in use, and low enough that
    /// the pongs of one second (at most 50 × 127 bytes) cost nothing.
    package static let defaultMaxPerSecond = 50

    package let maxPerSecond: Int
    private var windowStart: UInt64 = 0
    private var count = 0

    package init(maxPerSecond: Int = Self.defaultMaxPerSecond) {
        self.maxPerSecond = maxPerSecond
    }

    /// A ping arrived at `now`; false once the peer has sent more than `maxPerSecond` within
    /// the current one-second window.
    package mutating func admit(now: UInt64) -> Bool {
        if count == 0 || now &- windowStart >= 1000 {
            windowStart = now
            count = 0
        }
        count += 1
        return count <= maxPerSecond
    }
}
