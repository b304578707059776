import AVRProtocol

extension STSSendBudget {
    /// Whether an optional message (caller audio, DTMF) may be written to `stream` now; a drop
    /// is logged the first time and every 500th (one line, whichever STS transport).
    mutating func admits(_ stream: ClientStream, log: Logger) -> Bool {
        switch admit(pendingBytes: stream.pendingWriteBytes) {
        case .send: return true
        case .drop: return false
        case .dropAndLog(let count):
            Self.logDropped(count, maxPendingBytes: maxPendingBytes, log: log)
            return false
        }
    }

    /// The line for `count` caller messages dropped so far (the streaming-HTTP STS's
    /// `HTTPRequestTask` drops by the same bound and logs by `logsDrop`).
    static func logDropped(_ count: Int, maxPendingBytes: Int, log: Logger) {
        log.warn("STS is not reading: \(count) caller message(s) dropped (over \(maxPendingBytes / 1024) KiB unsent)")
    }
}
