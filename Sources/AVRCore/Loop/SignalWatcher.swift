internal import CUV

/// Delivers a POSIX signal (SIGINT, SIGTERM) on the loop thread.
package final class SignalWatcher {
    let handle: UnsafeMutablePointer<uv_signal_t>
    private var callback: ((Int32) -> Void)?
    private var isClosing = false

    package init(loop: EventLoop, signal: Int32, _ callback: @escaping (Int32) -> Void) throws(UVError) {
        handle = try makeLoopHandle { uv_signal_init(loop.raw, $0) }
        adoptLoopHandle(cuv_signal_as_handle(handle), by: self)
        self.callback = callback
        let started = uv_signal_start(handle, { raw, signum in
            Unmanaged<SignalWatcher>.fromOpaque(raw!.pointee.data).takeUnretainedValue().callback?(signum)
        }, signal)
        if started < 0 {
            close()
            throw UVError(started)
        }
    }

    /// A signal watcher must not keep a finished server's loop running.
    package func unref() { uv_unref(cuv_signal_as_handle(handle)) }

    package func close() {
        closeLoopHandle(cuv_signal_as_handle(handle), once: &isClosing)
    }
}

extension SignalWatcher: LoopHandleOwner {
    func loopHandleClosed() { callback = nil }
}

@available(*, unavailable)
extension SignalWatcher: Sendable {}
