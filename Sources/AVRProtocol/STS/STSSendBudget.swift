/// The bound on what a call queues toward an STS service that does not read: past
/// `maxPendingBytes` accepted by the socket but not yet taken by the kernel, caller audio
/// (and every other optional message) is dropped rather than queued, and counted. One policy
/// for both transports (WebSocket and streaming HTTP), so a service that stops reading costs
/// a call at most this much memory whichever way it is reached.
///
/// 256 KiB is 8 s of 8 kHz caller audio as WebSocket JSON (466 bytes per 20 ms), 6 s of raw
/// streaming-HTTP chunks: far more than any stall a live conversation recovers from.
package struct STSSendBudget: Sendable {
    package static let defaultMaxPendingBytes = 256 * 1024

    package enum Verdict: Equatable, Sendable {
        case send
        /// Dropped; log nothing (the count was logged recently).
        case drop
        /// Dropped; log the running count (the first drop, then every 500th).
        case dropAndLog(count: Int)
    }

    package let maxPendingBytes: Int
    /// Messages dropped so far because the service was not reading.
    package private(set) var dropped = 0

    package init(maxPendingBytes: Int = Self.defaultMaxPendingBytes) {
        self.maxPendingBytes = maxPendingBytes
    }

    /// Whether a message may be written while `pendingBytes` wait unsent.
    @inline(__always)
    package mutating func admit(pendingBytes: Int) -> Verdict {
        guard pendingBytes > maxPendingBytes else { return .send }
        dropped += 1
        return Self.logsDrop(dropped) ? .dropAndLog(count: dropped) : .drop
    }

    /// Whether the `count`th drop is logged: the first, then every 500th.
    @inline(__always)
    package static func logsDrop(_ count: Int) -> Bool {
        count == 1 || count % 500 == 0
    }
}
