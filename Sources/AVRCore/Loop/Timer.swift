internal import CUV

/// A libuv timer. Milliseconds, as libuv counts them; for sub-millisecond pacing the
/// caller compares against `EventLoop.nanoseconds` and re-arms.
package final class Timer {
    let handle: UnsafeMutablePointer<uv_timer_t>
    #if DEBUG
    /// For the confinement check only (debug builds).
    private unowned let loop: EventLoop
    #endif
    private var callback: (() -> Void)?
    private var isClosing = false

    package init(loop: EventLoop) throws(UVError) {
        assertOnLoop(loop)
        #if DEBUG
        self.loop = loop
        #endif
        handle = try makeLoopHandle { uv_timer_init(loop.raw, $0) }
        adoptLoopHandle(cuv_timer_as_handle(handle), by: self)
    }

    /// (Re)starts the timer: `callback` after `timeout` ms, then every `repeat` ms if non-zero.
    package func start(timeout: UInt64, repeat: UInt64 = 0, _ callback: @escaping () -> Void) {
        #if DEBUG
        assertOnLoop(loop)
        #endif
        guard !isClosing else { return }
        self.callback = callback
        uv_timer_start(handle, { timer in
            let this = Unmanaged<Timer>.fromOpaque(timer!.pointee.data).takeUnretainedValue()
            this.callback?()
        }, timeout, `repeat`)
    }

    package func stop() {
        #if DEBUG
        assertOnLoop(loop)
        #endif
        guard !isClosing else { return }
        uv_timer_stop(handle)
    }

    /// Does not keep the loop alive by itself (housekeeping timers).
    package func unref() { uv_unref(cuv_timer_as_handle(handle)) }

    package var isActive: Bool { !isClosing && uv_is_active(cuv_timer_as_handle(handle)) != 0 }

    package func close() {
        #if DEBUG
        assertOnLoop(loop)
        #endif
        closeLoopHandle(cuv_timer_as_handle(handle), once: &isClosing)
    }
}

extension Timer: LoopHandleOwner {
    func loopHandleClosed() { callback = nil }
}

@available(*, unavailable)
extension Timer: Sendable {}
