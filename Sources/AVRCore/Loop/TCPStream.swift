internal import CUV

/// A TCP connection on an `EventLoop` (see `EventLoop` for the ownership rule).
///
/// Reads arrive through `onRead` as a view of the loop's shared read buffer, valid only
/// during the call: the reader decodes what it can and copies only an incomplete tail.
///
/// Writes try the kernel first (`uv_try_write`): a frame the socket accepts at once costs
/// no copy and no allocation. Whatever the kernel does not take is appended to `queued`
/// and written with `uv_write` from `inFlight`, one write request at a time, so bytes keep
/// their order and their memory stays put until libuv's write callback.
///
/// `shutdown` half-closes: the FIN goes out after the last queued byte, reading goes on.
///
/// `closeAfterFlush` waits for the queued bytes at most `flushDeadline`, then closes hard:
/// a peer that stops reading would otherwise hold the connection (and its pending `uv_write`,
/// which keeps the loop alive) forever, and with it a stopping server's exit.
///
/// A write that fails never calls back inside `write`: the failure (`onEnd`, then `close`)
/// runs on a later loop turn, from a zero timer the stream owns (h2o does the same: a
/// failed write links the socket to the loop's pending list). So a caller's stack never
/// unwinds through a whole connection's teardown; meanwhile later writes are ignored.
package final class TCPStream {
    package unowned let loop: EventLoop
    let handle: UnsafeMutablePointer<uv_tcp_t>
    private let writeRequest: UnsafeMutablePointer<uv_write_t>
    private var inFlight = OutboundBuffer()
    private var queued = OutboundBuffer()
    /// The write side and the connection's life (`TCPStreamStates.swift`).
    private(set) var writeState = WriteState.idle
    /// Whether the owner reads, and the pause after a full buffer (`yieldRead`).
    private(set) var readState = ReadState.stopped
    private var shutdownCompletion: ((UVError?) -> Void)?
    /// `close` was called (the handle closes, or is closed).
    package var isClosing: Bool { writeState == .closed }
    /// `shutdown` was called: no more writes are accepted; the FIN is out or follows the
    /// queued bytes.
    package var isWriteShutDown: Bool {
        writeState == .halfClosed || writeState == .writing(then: .shutDown)
    }
    /// Whether a write has failed (its failure is about to be reported).
    var hasFailedWrite: Bool { writeState == .failed }
    /// Work deferred to a later loop turn (`runSoon`); created on first use.
    private var soon: Timer?
    private var soonWork: [() -> Void] = []
    /// Bounds `closeAfterFlush` (created then).
    private var flushTimer: Timer?

    /// How long `closeAfterFlush` waits for a peer to take the queued bytes before the
    /// connection is closed hard, ms. 2 s: on a live peer a flush takes a few round trips;
    /// a peer that has not read for 2 s is not going to read what is left.
    package static let flushDeadline: UInt64 = 2000

    /// Bytes accepted by `write` but not yet taken by the kernel: the backpressure signal.
    package var pendingWriteBytes: Int { inFlight.count + queued.count }

    /// Called with each chunk of received bytes.
    package var onRead: ((UnsafeRawBufferPointer) -> Void)?
    /// Called once when the peer closes (EOF: nil error) or the connection fails.
    package var onEnd: ((UVError?) -> Void)?
    /// Called once the handle is fully closed and its memory freed.
    package var onClose: (() -> Void)?
    /// Called when every pending write has reached the kernel.
    package var onDrain: (() -> Void)?

    package init(loop: EventLoop) throws(UVError) {
        self.loop = loop
        handle = try makeLoopHandle { uv_tcp_init(loop.raw, $0) }
        writeRequest = .allocate(capacity: 1)
        adoptLoopHandle(cuv_tcp_as_handle(handle), by: self)
    }

    fileprivate static func from(_ stream: UnsafeMutablePointer<uv_stream_t>?) -> TCPStream {
        Unmanaged<TCPStream>.fromOpaque(stream!.pointee.data).takeUnretainedValue()
    }

    var stream: UnsafeMutablePointer<uv_stream_t> { cuv_tcp_as_stream(handle) }

    package func setNoDelay(_ enabled: Bool = true) {
        _ = uv_tcp_nodelay(handle, enabled ? 1 : 0)
    }

    package var peerAddress: SocketAddress? {
        var storage = sockaddr_storage()
        var length = Int32(MemoryLayout<sockaddr_storage>.size)
        let status = withUnsafeMutablePointer(to: &storage) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { uv_tcp_getpeername(handle, $0, &length) }
        }
        guard status == 0 else { return nil }
        return withUnsafePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { SocketAddress(copying: $0) } }
    }

    // MARK: Reading

    package func startReading() {
        assertOnLoop(loop)
        guard !isClosing, readState.start() else { return }  // a pending resume starts it
        beginRead()
    }

    private func beginRead() {
        let status = uv_read_start(stream, { handle, _, buf in
            let loop = Unmanaged<EventLoop>.fromOpaque(handle!.pointee.loop.pointee.data).takeUnretainedValue()
            buf!.pointee = uv_buf_init(loop.sharedReadBuffer.baseAddress!.assumingMemoryBound(to: CChar.self),
                                       UInt32(loop.sharedReadBuffer.count))
        }, { stream, nread, buf in
            let this = TCPStream.from(stream)
            if nread > 0 {
                this.onRead?(UnsafeRawBufferPointer(start: buf!.pointee.base, count: nread))
                if nread == Int(buf!.pointee.len) { this.yieldRead() }
            } else if nread < 0 {
                this.stopReading()
                let error = UVError(Int32(nread))
                this.finish(error.isEndOfFile ? nil : error)
            }
        })
        if status < 0 {
            readState.startFailed()
            finish(UVError(status))
        }
    }

    package func stopReading() {
        assertOnLoop(loop)
        if readState.stop() { uv_read_stop(stream) }
    }

    /// A read that filled the whole buffer means the peer has more waiting: libuv would read
    /// on, up to 32 buffers (2 MiB) from this one socket before anything else on the loop
    /// runs, so a peer that floods (messages, pipelined requests, pings) would delay every
    /// other call's pacing by as long as decoding 2 MiB takes. Instead the stream stops after
    /// one buffer and resumes on the next loop turn, after the timers (pacing) and every other
    /// ready socket have had theirs. Reads shorter than the buffer (all normal traffic) never
    /// get here.
    private func yieldRead() {
        guard !isClosing, readState.yield() else { return }
        uv_read_stop(stream)
        runSoon { [unowned self] in
            if self.readState.resume() { self.beginRead() }
        }
    }

    private func finish(_ error: UVError?) {
        let callback = onEnd
        onEnd = nil
        callback?(error)
    }

    // MARK: Writing

    /// Sends `bytes`; copies only the part the kernel could not take right away.
    package func write(_ bytes: UnsafeRawBufferPointer) {
        assertOnLoop(loop)
        guard writeState.acceptsWrites, bytes.count > 0 else { return }
        var rest = bytes
        if !writeState.isWriting {
            var buf = uv_buf_init(UnsafeMutableRawPointer(mutating: bytes.baseAddress!).assumingMemoryBound(to: CChar.self),
                                  UInt32(bytes.count))
            let written = uv_try_write(stream, &buf, 1)
            if written == Int32(bytes.count) { return }
            if written > 0 {
                rest = UnsafeRawBufferPointer(rebasing: bytes[Int(written)...])
            } else if written != cuv_errno_eagain() {
                failSoon(UVError(written))
                return
            }
        }
        queued.append(rest)
        if !writeState.isWriting { startWrite() }
    }

    package func write(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { write($0) }
    }

    private func startWrite() {
        swap(&inFlight, &queued)
        guard !inFlight.isEmpty else { return }
        writeState.writeStarted()
        var buf = uv_buf_init(inFlight.base!.assumingMemoryBound(to: CChar.self), UInt32(inFlight.count))
        writeRequest.pointee.data = handle.pointee.data
        let status = uv_write(writeRequest, stream, &buf, 1) { request, status in
            let this = Unmanaged<TCPStream>.fromOpaque(request!.pointee.data).takeUnretainedValue()
            this.writeCompleted(status)
        }
        if status < 0 {
            failSoon(UVError(status))
        }
    }

    private func writeCompleted(_ status: Int32) {
        inFlight.reset()
        // Once closed (the owner's `close`, or a failure's), a late completion changes nothing.
        guard !isClosing else { return }
        if status < 0 {
            if !UVError(status).isCancelled { fail(UVError(status)) }
            return
        }
        if !queued.isEmpty { return startWrite() }
        switch writeState.flushed() {
        case .drain?: onDrain?()
        case .shutDown?: issueShutdown()
        case .close?: close()
        case nil: break
        }
    }

    private func fail(_ error: UVError) {
        finish(error)
        close()
    }

    /// A failure found inside `write`: later writes are ignored now, and the failure is
    /// reported on a later loop turn (unless the stream is closed before).
    private func failSoon(_ error: UVError) {
        guard writeState.writeFailed() else { return }
        runSoon { [unowned self] in self.fail(error) }
    }

    /// Runs `work` on a later loop turn, never inside the caller's stack; dropped if the
    /// stream closes first. The zero timer is the stream's own and closes with it.
    func runSoon(_ work: @escaping () -> Void) {
        guard !isClosing else { return }
        if soon == nil {
            guard let timer = try? Timer(loop: loop) else {
                // uv_timer_init cannot fail on an initialised loop; if it ever did, closing
                // now (without the callback) still never re-enters the caller.
                return close()
            }
            soon = timer
        }
        soonWork.append(work)
        guard let soon, !soon.isActive else { return }
        soon.start(timeout: 0) { [unowned self] in
            let batch = self.soonWork
            self.soonWork = []
            for work in batch where !self.isClosing { work() }
        }
    }

    // MARK: Half-closing

    /// Half-closes the connection: once every byte already written has reached the kernel,
    /// the write side is shut down (`uv_shutdown`, the peer reads EOF); reading goes on until
    /// `close`. Later writes are ignored. `completion` runs once, on the loop: nil when the
    /// FIN is queued, else the error (`ECANCELED` when the stream closes first).
    package func shutdown(_ completion: @escaping (UVError?) -> Void) {
        assertOnLoop(loop)
        switch writeState.shutdown() {
        case .ignored: return
        case .afterFlush: shutdownCompletion = completion
        case .now:
            shutdownCompletion = completion
            issueShutdown()
        }
    }

    /// Sends the FIN (the write state is `halfClosed` already).
    private func issueShutdown() {
        let request = UnsafeMutablePointer<uv_shutdown_t>.allocate(capacity: 1)
        // Unretained: the handle holds the stream until its close callback, and libuv calls a
        // pending shutdown back (ECANCELED) before that.
        request.pointee.data = handle.pointee.data
        let status = uv_shutdown(request, stream) { request, status in
            let this = Unmanaged<TCPStream>.fromOpaque(request!.pointee.data).takeUnretainedValue()
            request!.deallocate()
            this.shutdownCompleted(status)
        }
        if status < 0 {
            request.deallocate()
            shutdownCompleted(status)
        }
    }

    private func shutdownCompleted(_ status: Int32) {
        let callback = shutdownCompletion
        shutdownCompletion = nil
        callback?(status < 0 ? UVError(status) : nil)
    }

    // MARK: Closing

    /// Closes once every byte already written has reached the kernel, or after `deadline` ms
    /// (unsent bytes then dropped) if the peer does not take them.
    package func closeAfterFlush(deadline: UInt64 = TCPStream.flushDeadline) {
        assertOnLoop(loop)
        switch writeState.closeAfterFlush() {
        case .ignored: return
        case .now: return close()
        case .afterFlush: break
        }
        guard let timer = try? Timer(loop: loop) else { return close() }
        flushTimer = timer
        timer.start(timeout: deadline) { [unowned self] in self.close() }
    }

    /// Closes now; unsent bytes are dropped. Safe to call more than once.
    package func close() {
        assertOnLoop(loop)
        guard writeState.close() else { return }
        stopReading()
        soon?.close()
        soon = nil
        soonWork = []
        flushTimer?.close()
        flushTimer = nil
        closeLoopHandle(cuv_tcp_as_handle(handle))
    }

    fileprivate func closed() {
        inFlight.free()
        queued.free()
        writeRequest.deallocate()
        let callback = onClose
        onRead = nil
        onEnd = nil
        onClose = nil
        onDrain = nil
        shutdownCompletion = nil
        callback?()
    }

    // MARK: Connecting

    /// Connects to `address`; `completion` runs exactly once. Closing the stream before the
    /// connection completes cancels it (`UV_ECANCELED`), which is how timeouts are enforced.
    package func connect(to address: SocketAddress, completion: @escaping (UVError?) -> Void) {
        assertOnLoop(loop)
        let request = UnsafeMutablePointer<uv_connect_t>.allocate(capacity: 1)
        request.pointee.data = Unmanaged.passRetained(ConnectContext(completion)).toOpaque()
        let status = address.withSockaddr { uv_tcp_connect(request, handle, $0) { request, status in
            let context = Unmanaged<ConnectContext>.fromOpaque(request!.pointee.data).takeRetainedValue()
            request!.deallocate()
            context.completion(status < 0 ? UVError(status) : nil)
        } }
        if status < 0 {
            Unmanaged<ConnectContext>.fromOpaque(request.pointee.data).release()
            request.deallocate()
            completion(UVError(status))
        }
    }
}

private final class ConnectContext {
    let completion: (UVError?) -> Void
    init(_ completion: @escaping (UVError?) -> Void) { self.completion = completion }
}

extension TCPStream: LoopHandleOwner {
    func loopHandleClosed() { closed() }
}

@available(*, unavailable)
extension TCPStream: Sendable {}
