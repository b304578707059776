internal import CUV

/// Runs a body on a new OS thread (`uv_thread_create`); `join()` waits for it.
package final class LoopThread {
    private var thread = uv_thread_t()
    private var joined = false

    private final class Box {
        let body: @Sendable () -> Void
        init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }

    package init(_ body: @escaping @Sendable () -> Void) throws(UVError) {
        let box = Unmanaged.passRetained(Box(body)).toOpaque()
        let status = uv_thread_create(&thread, { argument in
            let box = Unmanaged<Box>.fromOpaque(argument!).takeRetainedValue()
            box.body()
        }, box)
        if status < 0 {
            Unmanaged<Box>.fromOpaque(box).release()
            throw UVError(status)
        }
    }

    package func join() {
        guard !joined else { return }
        joined = true
        uv_thread_join(&thread)
    }
}
