internal import CUV
import AVRProtocol

/// A listening TCP socket; each accepted connection is handed over as a `TCPStream`
/// with Nagle disabled (20 ms audio frames must not wait for coalescing).
///
/// The listener accepts by itself (a `uv_poll_t` on the listening socket) rather than
/// through `uv_listen`: when the process is out of file descriptors, libuv's own accept
/// loop either accepts and closes pending connections silently (while it holds a spare
/// fd) or, once that spare is gone too, calls back with EMFILE in a loop that never
/// returns to the event loop. Here an accept that fails for lack of fds or memory pauses
/// accepting (reported once through `onAcceptError`); connections wait in the kernel's
/// backlog; accepting is retried after 50 ms, doubling up to 1 s, and `onAcceptResumed`
/// reports when it works again. Before pausing for lack of fds, the owner is asked
/// (`onAcceptPressure`) to close connections it can spare; when it does, the accept is
/// tried again at once.
package final class TCPListener {
    package unowned let loop: EventLoop
    let handle: UnsafeMutablePointer<uv_tcp_t>
    private let poll: UnsafeMutablePointer<uv_poll_t>
    private var pollInitialised = false
    private var listeningFD: Int32 = -1
    private var isClosing = false
    private var pendingCloses = 0
    private var retry: Timer?
    private var pausedAt: UInt64 = 0
    /// Accepts failed in the current pause (the retry waits grow with them).
    private var failedAttempts = 0
    package var onConnection: ((TCPStream) -> Void)?
    /// Accept failures (e.g. out of file descriptors): once per pause for those that pause
    /// accepting, every time for others; the listener keeps listening.
    package var onAcceptError: ((UVError) -> Void)?
    /// Accepting works again after a pause: how long it lasted (ms) and how many attempts failed.
    package var onAcceptResumed: ((_ pausedMilliseconds: UInt64, _ failedAttempts: Int) -> Void)?
    /// Accepting failed for lack of file descriptors (EMFILE, ENFILE): the owner closes
    /// connections it can spare and returns true if it closed any (the accept is retried at
    /// once, up to `pressureReliefs` times per turn), false to pause as described above.
    package var onAcceptPressure: ((UVError) -> Bool)?
    /// Connections accepted per readiness callback at most (the rest wait for the next turn).
    private static let acceptBurst = 64
    /// Times per readiness callback `onAcceptPressure` may make the accept retry at once.
    private static let pressureReliefs = 8
    /// A paused accept is retried after 50 ms, doubling per failed retry, up to 1 s.
    static let acceptRetry = BackoffPolicy(base: 50, factor: 2, cap: 1_000)

    /// Binds and listens on `host:port` (`port` 0 picks a free port; see `port`).
    package init(loop: EventLoop, host: String, port: Int, backlog: Int32 = 1024, reusePort: Bool = false) throws(UVError) {
        self.loop = loop
        handle = .allocate(capacity: 1)
        poll = .allocate(capacity: 1)
        guard let address = SocketAddress(numericHost: host, port: port) else {
            handle.deallocate()
            poll.deallocate()
            throw UVError(UV_EINVAL.rawValue)
        }
        let family = UInt32(address.storage.ss_family)
        let initStatus = uv_tcp_init_ex(loop.raw, handle, family)
        if initStatus < 0 {
            handle.deallocate()
            poll.deallocate()
            throw UVError(initStatus)
        }
        adoptLoopHandle(cuv_tcp_as_handle(handle), by: self)
        let status = address.withSockaddr { cuv_tcp_bind_reuseport(handle, $0, reusePort ? 1 : 0) }
        if status < 0 {
            close()
            throw UVError(status)
        }
        var fd: Int32 = -1
        let listenStatus = cuv_tcp_listen_fd(handle, backlog, &fd)
        if listenStatus < 0 {
            close()
            throw UVError(listenStatus)
        }
        listeningFD = fd
        let pollStatus = uv_poll_init(loop.raw, poll, fd)
        if pollStatus < 0 {
            close()
            throw UVError(pollStatus)
        }
        pollInitialised = true
        adoptLoopHandle(cuv_poll_as_handle(poll), by: self)
        startPolling()
    }

    private func startPolling() {
        uv_poll_start(poll, Int32(UV_READABLE.rawValue)) { raw, status, _ in
            let this = Unmanaged<TCPListener>.fromOpaque(raw!.pointee.data).takeUnretainedValue()
            if status < 0 {
                this.onAcceptError?(UVError(status))
                return
            }
            this.acceptPending()
        }
    }

    /// The port actually bound.
    package var port: Int {
        var storage = sockaddr_storage()
        var length = Int32(MemoryLayout<sockaddr_storage>.size)
        return withUnsafeMutablePointer(to: &storage) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { addr in
                uv_tcp_getsockname(handle, addr, &length) == 0 ? Int(cuv_addr_port(addr)) : 0
            }
        }
    }

    /// Accepts what is waiting (up to a burst); pauses on a lack of fds or memory.
    private func acceptPending() {
        var reliefs = 0
        for _ in 0..<Self.acceptBurst where !isClosing {
            let fd = cuv_accept(listeningFD)
            if fd >= 0 {
                if pausedAt != 0 { resumed() }
                hand(fd)
                continue
            }
            if fd == cuv_errno_eagain() { return }
            if fd == cuv_errno_econnaborted() || fd == cuv_errno_eintr() { continue }
            if fd == cuv_errno_emfile() || fd == cuv_errno_enfile(), reliefs < Self.pressureReliefs,
               onAcceptPressure?(UVError(fd)) == true {
                reliefs += 1
                continue
            }
            if fd == cuv_errno_emfile() || fd == cuv_errno_enfile() || fd == cuv_errno_enobufs() || fd == cuv_errno_enomem() {
                pause(UVError(fd))
            } else {
                onAcceptError?(UVError(fd))
            }
            return
        }
    }

    private func hand(_ fd: Int32) {
        let client: TCPStream
        do { client = try TCPStream(loop: loop) } catch {
            cuv_close_fd(fd)
            onAcceptError?(error)
            return
        }
        let openStatus = uv_tcp_open(client.handle, fd)
        if openStatus < 0 {
            cuv_close_fd(fd)
            client.close()
            onAcceptError?(UVError(openStatus))
            return
        }
        client.setNoDelay()
        if let onConnection { onConnection(client) } else { client.close() }
    }

    /// Out of fds (or memory): stop polling, retry later; report the first failure of a pause.
    private func pause(_ error: UVError) {
        failedAttempts += 1
        uv_poll_stop(poll)
        if pausedAt == 0 {
            pausedAt = loop.nanoseconds
            onAcceptError?(error)
        }
        let retryDelay = Self.acceptRetry.delay(afterFailures: failedAttempts)
        if retry == nil { retry = try? Timer(loop: loop) }
        guard let retry else {
            // No timer: keep polling, the next connection retries.
            startPolling()
            return
        }
        retry.start(timeout: retryDelay) { [unowned self] in
            guard !isClosing else { return }
            startPolling()
            acceptPending()
        }
    }

    private func resumed() {
        let milliseconds = (loop.nanoseconds - pausedAt) / 1_000_000
        let attempts = failedAttempts
        pausedAt = 0
        failedAttempts = 0
        onAcceptResumed?(milliseconds, attempts)
    }

    package func close() {
        assertOnLoop(loop)
        guard !isClosing else { return }
        isClosing = true
        retry?.close()
        retry = nil
        pendingCloses = pollInitialised ? 2 : 1
        if pollInitialised {
            // Stops watching the fd (synchronously, before the TCP handle closes it).
            closeLoopHandle(cuv_poll_as_handle(poll))
        }
        // Closes the listening socket now: a connect after `close()` is refused.
        closeLoopHandle(cuv_tcp_as_handle(handle))
    }
}

extension TCPListener: LoopHandleOwner {
    /// Once both handles are closed, the callbacks go (each handle's memory is freed, and
    /// its reference to the listener given back, after its own callback).
    func loopHandleClosed() {
        pendingCloses -= 1
        guard pendingCloses == 0 else { return }
        // A poll handle never initialised (a failed start) was not closed: its memory goes here.
        if !pollInitialised { poll.deallocate() }
        onConnection = nil
        onAcceptError = nil
        onAcceptResumed = nil
        onAcceptPressure = nil
    }
}

@available(*, unavailable)
extension TCPListener: Sendable {}
