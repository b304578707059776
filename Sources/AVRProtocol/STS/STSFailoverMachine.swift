/// Which STS endpoint a call connects to, and when it gives up: the failover decisions of a
/// call whose `STS_URL` (or webhook `sts_url`) lists several endpoints, without I/O. The
/// shell (`STSFailoverBackend`) opens the connections and passes the loop's time in.
///
/// **Call start.** Endpoints are tried in order, each once, within twice `STS_CONNECT_TIMEOUT`
/// counted from the start (what one endpoint may take: its connect, then its handshake, each
/// bounded by the timeout; so a second endpoint never makes a start fail sooner than one
/// would): each attempt gets what is left divided by the endpoints not yet tried, for its
/// connect and again for its handshake. A refused port costs a millisecond and leaves the rest
/// to the next one; a black-holed one cannot take the others' time. When the last fails, or
/// the time is up, the call gives up.
///
/// **Mid-call.** A connection lost without a close frame (reset, end of stream, no answer to
/// a ping) is replaced by a connection to the next endpoint, round-robin (after the last, the
/// first): up to `attempts` attempts within `budget` ms of the loss, each but the last getting
/// half of what is left of the budget, the last all of it. The first attempt goes to the
/// endpoint most likely healthy, and when a whole fleet of calls fails over to it at once its
/// handshakes queue up: it gets the most time, and the attempts after it, often to the
/// endpoint just lost (refused at once), still get some. A connection that is lost again less
/// than `budget` ms after a failover opened it continues the same count instead of starting a
/// new one, so an endpoint that accepts and drops at once costs at most `attempts`
/// connections per `budget`. A service that closes with a close frame is not failed over.
package struct STSFailoverMachine {
    package struct Settings: Sendable, Equatable {
        /// How many endpoints the call has (at least 1; with 1 nothing fails over mid-call).
        package var endpoints: Int
        /// `STS_CONNECT_TIMEOUT`, ms: the call start's whole budget is twice this.
        package var connectTimeout: UInt64
        /// `STS_FAILOVER_ATTEMPTS`: connections tried after a loss.
        package var attempts: Int
        /// `STS_FAILOVER_BUDGET_MS`: from the loss to the last attempt's end.
        package var budget: UInt64

        package init(endpoints: Int, connectTimeout: UInt64, attempts: Int, budget: UInt64) {
            self.endpoints = endpoints
            self.connectTimeout = connectTimeout
            self.attempts = attempts
            self.budget = budget
        }
    }

    package enum Phase: Sendable, Equatable {
        case idle
        /// The first connection; `tried` endpoints attempted so far (the current one included).
        case starting(since: UInt64, tried: Int)
        case open(since: UInt64)
        /// Replacing the connection lost at `lostAt` to endpoint `from`.
        case reconnecting(from: Int, lostAt: UInt64)
        case ended
    }

    /// A failover that worked: the call's audio flows through `to` since `gap` ms after it was
    /// lost on `from`.
    package struct Failover: Sendable, Equatable {
        package let from: Int
        package let to: Int
        package let gapMilliseconds: UInt64
    }

    package enum Action: Sendable, Equatable {
        /// Open a connection to endpoint `endpoint` bounded by `timeout` ms (connect, and
        /// again the handshake); the whole phase ends `deadlineIn` ms from now whatever the
        /// attempt does (arm a timer; `deadlinePassed` when it fires).
        case connect(endpoint: Int, timeout: UInt64, deadlineIn: UInt64)
        /// The connection is open; after a loss, the failover it completed.
        case opened(Failover?)
        /// Nothing more to try: end the call, naming every endpoint tried.
        case giveUp
        /// Not the machine's business (a close frame, a failure no other endpoint would mend,
        /// a single endpoint): report it to the call as it is.
        case passOn
        case none
    }

    package let settings: Settings
    package private(set) var phase = Phase.idle
    /// The endpoint of the attempt in flight or of the open connection.
    package private(set) var current = 0
    /// Attempts left of the current failover window.
    private var attemptsLeft = 0
    /// The failover window's end (absolute ms), while a failover's connection is young.
    private var windowEnd: UInt64?
    private var deadline: UInt64 = 0

    package init(settings: Settings) {
        self.settings = settings
    }

    package mutating func start(now: UInt64) -> Action {
        guard case .idle = phase else { return .none }
        phase = .starting(since: now, tried: 1)
        current = 0
        let budget = 2 &* settings.connectTimeout
        deadline = now &+ budget
        return .connect(endpoint: 0, timeout: max(1, min(settings.connectTimeout, budget / UInt64(max(1, settings.endpoints)))),
                        deadlineIn: budget)
    }

    /// The attempt in flight failed (refused, timed out, rejected, lost before it opened).
    package mutating func attemptFailed(now: UInt64) -> Action {
        switch phase {
        case .starting(let since, let tried):
            let left = remaining(now)
            guard tried < settings.endpoints, left > 0 else { return end() }
            phase = .starting(since: since, tried: tried + 1)
            current = tried
            let share = max(1, min(settings.connectTimeout, left / UInt64(settings.endpoints - tried)))
            return .connect(endpoint: current, timeout: share, deadlineIn: left)
        case .reconnecting:
            return nextAttempt(now: now)
        default:
            return .none
        }
    }

    /// The phase's deadline passed with the attempt still in flight.
    package mutating func deadlinePassed(now: UInt64) -> Action {
        switch phase {
        case .starting, .reconnecting:
            guard remaining(now) == 0 else { return .none }
            return end()
        default:
            return .none
        }
    }

    package mutating func opened(now: UInt64) -> Action {
        switch phase {
        case .starting:
            phase = .open(since: now)
            return .opened(nil)
        case .reconnecting(let from, let lostAt):
            phase = .open(since: now)
            windowEnd = now &+ settings.budget
            return .opened(Failover(from: from, to: current, gapMilliseconds: now &- lostAt))
        default:
            return .none
        }
    }

    /// The open connection was lost without a close frame.
    package mutating func lost(now: UInt64) -> Action {
        guard case .open = phase else { return .none }
        guard settings.endpoints > 1, settings.attempts > 0 else {
            phase = .ended
            return .passOn
        }
        // A connection a failover opened that dies young continues that failover's count.
        if let windowEnd, now < windowEnd {
            guard attemptsLeft > 0 else { return end() }
        } else {
            attemptsLeft = settings.attempts
        }
        windowEnd = nil
        phase = .reconnecting(from: current, lostAt: now)
        deadline = now &+ settings.budget
        return nextAttempt(now: now)
    }

    /// Anything else ends the connection (a close frame, the caller hanging up, a failure
    /// that is not a loss): the machine is done.
    package mutating func finished() -> Action {
        phase = .ended
        return .passOn
    }

    private mutating func nextAttempt(now: UInt64) -> Action {
        let left = remaining(now)
        guard attemptsLeft > 0, left > 0 else { return end() }
        current = (current + 1) % settings.endpoints
        let timeout = attemptsLeft > 1 ? max(1, left / 2) : left
        attemptsLeft -= 1
        return .connect(endpoint: current, timeout: timeout, deadlineIn: left)
    }

    private func remaining(_ now: UInt64) -> UInt64 {
        deadline > now ? deadline - now : 0
    }

    private mutating func end() -> Action {
        phase = .ended
        return .giveUp
    }
}
