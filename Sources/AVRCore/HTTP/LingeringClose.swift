/// The drain that follows a response after which the server closes the connection while
/// the client may still be sending (an early 413, 400, 408, 431, or `Connection: close`).
///
/// Closing a socket with unread input makes the kernel send a reset, and a reset destroys
/// the response before a client that writes its whole body before reading gets to it. So
/// the connection half-closes instead and reads and discards input until the client's EOF,
/// or until one of the bounds below ends it. This type is only the bookkeeping: it is fed
/// byte counts and loop times (milliseconds) and says when to stop; it holds no input.
struct LingeringClose: Equatable {
    struct Bounds: Equatable, Sendable {
        /// The whole drain, counted from the decision to close (so the flush of the response
        /// is inside it too), ms.
        var totalMilliseconds: UInt64 = 5_000
        /// Input may pause this long before the connection is closed, ms.
        var idleMilliseconds: UInt64 = 2_000
        /// Input discarded before the connection is closed.
        var maxBytes = 64 * 1024 * 1024
    }

    enum Ending: String, Equatable, Sendable {
        case peerClosed = "peer closed"
        case idle = "idle"
        case timeLimit = "time limit"
        case byteLimit = "byte limit"
    }

    let bounds: Bounds
    let startedAt: UInt64
    private(set) var lastInputAt: UInt64
    private(set) var discardedBytes = 0

    init(bounds: Bounds, now: UInt64) {
        self.bounds = bounds
        startedAt = now
        lastInputAt = now
    }

    private var deadline: UInt64 { startedAt + bounds.totalMilliseconds }

    /// How long to wait before `check` is due (ms; at least 1).
    func timeout(now: UInt64) -> UInt64 {
        let due = min(deadline, lastInputAt + bounds.idleMilliseconds)
        return due > now ? due - now : 1
    }

    /// Records `count` discarded bytes; `.byteLimit` once the budget is spent.
    mutating func discarded(_ count: Int, now: UInt64) -> Ending? {
        discardedBytes += count
        lastInputAt = max(lastInputAt, now)
        return discardedBytes >= bounds.maxBytes ? .byteLimit : nil
    }

    /// Called when the timer fires: why to close now, or nil to wait `timeout(now:)` more.
    func check(now: UInt64) -> Ending? {
        if now >= deadline { return .timeLimit }
        if now >= lastInputAt + bounds.idleMilliseconds { return .idle }
        return nil
    }
}
