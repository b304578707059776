/// Lines a peer can cause once per message it sends, by kind.
///
/// Each kind has its own budget, so a caller pressing keys does not silence the STS's errors.
package enum PeerLogKind: Int, CaseIterable, Sendable, CustomStringConvertible {
    /// A DTMF digit from the caller.
    case dtmf
    /// A DTMF message whose byte is no DTMF key.
    case invalidDTMF
    /// A transcript from the speech service.
    case transcript
    /// An interruption from the speech service.
    case interruption
    /// An error the speech service reported (an STS `error` message, a pipeline module's
    /// failure).
    case serviceError
    /// A message from the speech service we do not use: unknown type, binary, invalid JSON
    /// or base64.
    case unexpectedMessage
    /// An error message from a pipeline module (ASR, LLM, TTS).
    case moduleError
    /// A webhook dropped because the queues are full (the dispatcher's own budget).
    case webhookDropped
    /// A control message from Asterisk's WebSocket channel (the `/media` leg) that could not
    /// be read, or a command of ours it refused.
    case callerMessage

    /// The name in the summary line, `suppressed N similar lines (<kind>)`.
    package var description: String {
        switch self {
        case .dtmf: "dtmf"
        case .invalidDTMF: "invalid_dtmf"
        case .transcript: "transcript"
        case .interruption: "interruption"
        case .serviceError: "service_error"
        case .unexpectedMessage: "unexpected_message"
        case .moduleError: "module_error"
        case .webhookDropped: "webhook_dropped"
        case .callerMessage: "caller_message"
        }
    }
}

/// One call's log budget: per `PeerLogKind`, a token bucket of `burst` lines, refilled at
/// `perSecond` lines a second. A line over the budget is not written but counted; the count
/// is reported (`suppressed N similar lines (<kind>)`) just before the next line of that kind
/// that is written, which is when the bucket has refilled, or at the end of the call
/// (`drainSuppressed`). A peer flooding one kind thus gets at most `burst` lines, then about
/// `perSecond` lines and as many summaries a second.
///
/// Pure (the clock, ms, is passed in); the per-kind state is allocated once, so a check
/// allocates nothing.
package struct LogRateLimiter: Sendable {
    package enum Decision: Equatable, Sendable {
        /// Write the line; first a summary of the `suppressedBefore` lines not written (if > 0).
        case write(suppressedBefore: Int)
        /// Do not write it (it is counted).
        case suppress
    }

    private var buckets: [TokenBucket]
    private var suppressed: [Int]

    package init(perSecond: UInt64 = 2, burst: UInt64 = 20) {
        buckets = Array(repeating: TokenBucket(perSecond: perSecond, burst: burst), count: PeerLogKind.allCases.count)
        suppressed = Array(repeating: 0, count: PeerLogKind.allCases.count)
    }

    /// Whether a line of `kind` may be written at `now` (ms, monotonic).
    package mutating func admit(_ kind: PeerLogKind, now: UInt64) -> Decision {
        let index = kind.rawValue
        guard buckets[index].take(now: now) else {
            suppressed[index] += 1
            return .suppress
        }
        let before = suppressed[index]
        suppressed[index] = 0
        return .write(suppressedBefore: before)
    }

    /// Lines not written since the last one of their kind, per kind with any; the counts are
    /// reset. For the end of the call.
    package mutating func drainSuppressed() -> [(kind: PeerLogKind, count: Int)] {
        var result: [(kind: PeerLogKind, count: Int)] = []
        for kind in PeerLogKind.allCases where suppressed[kind.rawValue] > 0 {
            result.append((kind, suppressed[kind.rawValue]))
            suppressed[kind.rawValue] = 0
        }
        return result
    }
}
