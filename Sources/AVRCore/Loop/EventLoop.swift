internal import CUV
#if canImport(Glibc)
import Glibc
#endif
#if DEBUG
import Synchronization
#endif

/// One libuv loop and the resources its handles share.
///
/// Ownership rule for every handle wrapper in this folder (`TCPListener`, `TCPStream`,
/// `Timer`, `SignalWatcher`):
/// - the libuv handle is heap-allocated by its wrapper and never moves;
/// - from `init` until libuv's close callback, `handle->data` holds a *retained* reference
///   to the wrapper, so the wrapper outlives libuv's last callback by construction, whether
///   or not anyone else still references it;
/// - `close()` starts `uv_close`; requests still pending get their callbacks with
///   `UV_ECANCELED` first; then the close callback frees the handle memory, drops every
///   stored closure (closures that capture the wrapper form cycles) and releases the
///   self-reference. A wrapper that is never closed is a leak, and tests check for it by
///   requiring `uv_loop_close` to succeed.
///
/// Everything here is confined to the loop's thread; the types are not Sendable. Debug builds
/// check it: the entry points of the loop-confined classes call `assertOnLoop()`, which fails
/// when another thread touches them while the loop runs (release builds compile it away).
package final class EventLoop {
    let raw: UnsafeMutablePointer<uv_loop_t>
    #if DEBUG
    /// The thread inside `run()`, 0 while the loop is not running (debug builds only).
    private let runningThread = Atomic<UInt>(0)
    #endif
    /// One read buffer for every stream on this loop: libuv fills it, the stream's reader
    /// consumes it synchronously, and only an incomplete message tail is copied out.
    let sharedReadBuffer: UnsafeMutableRawBufferPointer
    private var isClosed = false

    package init() throws(UVError) {
        _ = Self.ignoreBrokenPipes
        raw = .allocate(capacity: 1)
        let status = uv_loop_init(raw)
        if status < 0 {
            raw.deallocate()
            throw UVError(status)
        }
        sharedReadBuffer = .allocate(byteCount: 64 * 1024, alignment: 16)
        // Read-buffer allocation finds the loop through this (unretained: the loop outlives its handles).
        raw.pointee.data = Unmanaged.passUnretained(self).toOpaque()
    }

    /// A write to a connection its peer has reset raises SIGPIPE, whose default action ends
    /// the process — every call on it, for one peer that went away. libuv leaves the choice to
    /// the program; every process that runs a loop here ignores the signal, and the write
    /// fails with EPIPE, which the stream reports like any other error. Once per process.
    private static let ignoreBrokenPipes: Void = {
        signal(SIGPIPE, SIG_IGN)
    }()

    /// Runs until no active handle is left or `stop()` is called.
    package func run() {
        #if DEBUG
        runningThread.store(UInt(pthread_self()), ordering: .releasing)
        defer { runningThread.store(0, ordering: .releasing) }
        #endif
        uv_run(raw, UV_RUN_DEFAULT)
    }

    /// Whether the calling thread may touch this loop and its handles: while the loop runs,
    /// only the thread inside `run()` may; before and after (set-up, tear-down), its owner
    /// may. Always true in release builds, which do not track the thread.
    package var isOnLoopThread: Bool {
        #if DEBUG
        let running = runningThread.load(ordering: .acquiring)
        return running == 0 || running == UInt(pthread_self())
        #else
        return true
        #endif
    }

    /// Debug builds: traps when called off the loop's thread while the loop runs (as NIO's
    /// `preconditionInEventLoop`). Release builds: nothing.
    @inline(__always)
    func assertOnLoop(file: StaticString = #fileID, line: UInt = #line) {
        #if DEBUG
        assert(isOnLoopThread, "touched off its event loop's thread", file: file, line: line)
        #endif
    }

    package func stop() { uv_stop(raw) }

    /// Monotonic clock in nanoseconds (not cached per iteration, unlike `uv_now`).
    package var nanoseconds: UInt64 { uv_hrtime() }

    /// Loop time in milliseconds, cached at the start of the iteration.
    package var milliseconds: UInt64 { uv_now(raw) }

    /// Refreshes the cached loop time: for deadlines set before the loop first runs (start-up
    /// work such as loading the trust store can take a while after the loop was created).
    package func updateTime() { uv_update_time(raw) }

    /// Number of handles libuv still knows (closing ones included).
    package var aliveHandleCount: Int {
        var count = 0
        withUnsafeMutablePointer(to: &count) { counter in
            uv_walk(raw, { _, arg in arg!.assumingMemoryBound(to: Int.self).pointee += 1 }, counter)
        }
        return count
    }

    /// Closes the loop; fails with `EBUSY` while any handle is still open.
    package func close() throws(UVError) {
        try UVError.check(uv_loop_close(raw))
        isClosed = true
        raw.deallocate()
        sharedReadBuffer.deallocate()
    }

    deinit {
        if !isClosed {
            // A loop with open handles cannot be freed safely; leaking it is the lesser evil.
            if uv_loop_close(raw) == 0 {
                raw.deallocate()
                sharedReadBuffer.deallocate()
            }
        }
    }
}

@available(*, unavailable)
extension EventLoop: Sendable {}

/// The form the loop-confined classes call at their entry points: `loop` is not even
/// evaluated in release builds (an `unowned` reference costs a retain and a release to load,
/// which a per-frame `write` should not pay for a check that is compiled away).
@inline(__always)
func assertOnLoop(_ loop: @autoclosure () -> EventLoop, file: StaticString = #fileID, line: UInt = #line) {
    #if DEBUG
    loop().assertOnLoop(file: file, line: line)
    #endif
}
