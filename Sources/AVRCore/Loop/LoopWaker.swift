internal import CUV

/// Wakes a loop from another thread (`uv_async_t`): the one doorway into a loop.
///
/// `wake()` may be called from any thread — it only calls `uv_async_send`, the one libuv
/// function documented as thread-safe — which is why this type alone is `@unchecked
/// Sendable`. `close()` must run on the loop's own thread (e.g. in the callback).
package final class LoopWaker: @unchecked Sendable {
    let handle: UnsafeMutablePointer<uv_async_t>
    private var callback: (() -> Void)?
    private var isClosing = false

    package init(loop: EventLoop, _ callback: @escaping () -> Void) throws(UVError) {
        handle = try makeLoopHandle {
            uv_async_init(loop.raw, $0) { raw in
                Unmanaged<LoopWaker>.fromOpaque(raw!.pointee.data).takeUnretainedValue().callback?()
            }
        }
        self.callback = callback
        adoptLoopHandle(cuv_async_as_handle(handle), by: self)
    }

    /// Any thread. Several wakes before the loop runs may coalesce into one callback.
    package func wake() {
        uv_async_send(handle)
    }

    /// Loop thread only.
    package func close() {
        closeLoopHandle(cuv_async_as_handle(handle), once: &isClosing)
    }
}

extension LoopWaker: LoopHandleOwner {
    func loopHandleClosed() { callback = nil }
}
