internal import CUV

/// The Swift object behind one or more libuv handles. Each handle is allocated with
/// `.allocate(capacity: 1)` and its `data` holds one strong reference to its owner
/// (`adoptLoopHandle`), so the owner outlives every callback of the handle;
/// `closeLoopHandle` frees the handle and gives that reference back once libuv is done.
protocol LoopHandleOwner: AnyObject {
    /// One of the owner's handles is closed: libuv will not call back about it again. Runs
    /// before its memory is freed and the reference it held released.
    func loopHandleClosed()
}

/// Allocates a handle and initialises it with `initialise` (`uv_timer_init` and the like);
/// the memory is freed again if that fails.
func makeLoopHandle<Handle>(_ initialise: (UnsafeMutablePointer<Handle>) -> Int32) throws(UVError) -> UnsafeMutablePointer<Handle> {
    let handle = UnsafeMutablePointer<Handle>.allocate(capacity: 1)
    let status = initialise(handle)
    guard status >= 0 else {
        handle.deallocate()
        throw UVError(status)
    }
    return handle
}

/// Makes `handle`'s `data` a strong reference to `owner`, given back by `closeLoopHandle`.
func adoptLoopHandle(_ handle: UnsafeMutablePointer<uv_handle_t>, by owner: some LoopHandleOwner) {
    handle.pointee.data = Unmanaged.passRetained(owner as AnyObject).toOpaque()
}

/// Closes a handle adopted with `adoptLoopHandle`, once: `isClosing` is the owner's record
/// (a second call does nothing). On libuv's close callback (a later loop turn) the owner's
/// `loopHandleClosed` runs, then the handle's memory is freed and the reference it held
/// released.
func closeLoopHandle(_ handle: UnsafeMutablePointer<uv_handle_t>, once isClosing: inout Bool) {
    guard !isClosing else { return }
    isClosing = true
    closeLoopHandle(handle)
}

/// `closeLoopHandle(_:once:)` for an owner that keeps its own record: call once per handle.
func closeLoopHandle(_ handle: UnsafeMutablePointer<uv_handle_t>) {
    uv_close(handle) { raw in
        let unmanaged = Unmanaged<AnyObject>.fromOpaque(raw!.pointee.data)
        (unmanaged.takeUnretainedValue() as! any LoopHandleOwner).loopHandleClosed()
        UnsafeMutableRawPointer(raw!).deallocate()
        unmanaged.release()
    }
}
