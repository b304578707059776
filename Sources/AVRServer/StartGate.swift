import AVRCore
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Wakers of the worker loops, collected as each thread starts.
final class WakerList: Sendable {
    private let wakers = Mutex<[LoopWaker]>([])
    func append(_ waker: LoopWaker) { wakers.withLock { $0.append(waker) } }
    var all: [LoopWaker] { wakers.withLock { $0 } }
}

/// Lets the main thread wait until a worker loop has bound its listeners (or failed).
final class StartGate: Sendable {
    private let state = Mutex<(done: Bool, failure: String?)>((false, nil))

    func open(_ failure: String?) { state.withLock { $0 = (true, failure) } }

    /// Polls every millisecond: start-up only, never on a hot path.
    func wait() -> String? {
        while true {
            let (done, failure) = state.withLock { $0 }
            if done { return failure }
            usleep(1000)
        }
    }
}
