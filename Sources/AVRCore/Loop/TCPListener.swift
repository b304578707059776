internal import CUV

/// A listening TCP socket; each accepted connection is handed over as a `TCPStream`
/// with Nagle disabled (20 ms audio frames must not wait for coalescing).
public final class TCPListener {
    public unowned let loop: EventLoop
    let handle: UnsafeMutablePointer<uv_tcp_t>
    private var isClosing = false
    public var onConnection: ((TCPStream) -> Void)?
    /// Accept failures (e.g. out of file descriptors); the listener keeps listening.
    public var onAcceptError: ((UVError) -> Void)?

    /// Binds and listens on `host:port` (`port` 0 picks a free port; see `port`).
    public init(loop: EventLoop, host: String, port: Int, backlog: Int32 = 1024, reusePort: Bool = false) throws(UVError) {
        self.loop = loop
        handle = .allocate(capacity: 1)
        guard let address = SocketAddress(numericHost: host, port: port) else {
            handle.deallocate()
            throw UVError(UV_EINVAL.rawValue)
        }
        let family = UInt32(address.storage.ss_family)
        let initStatus = uv_tcp_init_ex(loop.raw, handle, family)
        if initStatus < 0 {
            handle.deallocate()
            throw UVError(initStatus)
        }
        handle.pointee.data = Unmanaged.passRetained(self).toOpaque()
        let status = address.withSockaddr { cuv_tcp_bind_reuseport(handle, $0, reusePort ? 1 : 0) }
        if status < 0 {
            close()
            throw UVError(status)
        }
        let listenStatus = uv_listen(cuv_tcp_as_stream(handle), backlog) { server, status in
            let this = Unmanaged<TCPListener>.fromOpaque(server!.pointee.data).takeUnretainedValue()
            this.accept(status)
        }
        if listenStatus < 0 {
            close()
            throw UVError(listenStatus)
        }
    }

    /// The port actually bound.
    public var port: Int {
        var storage = sockaddr_storage()
        var length = Int32(MemoryLayout<sockaddr_storage>.size)
        return withUnsafeMutablePointer(to: &storage) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { addr in
                uv_tcp_getsockname(handle, addr, &length) == 0 ? Int(cuv_addr_port(addr)) : 0
            }
        }
    }

    private func accept(_ status: Int32) {
        if status < 0 {
            onAcceptError?(UVError(status))
            return
        }
        let client: TCPStream
        do { client = try TCPStream(loop: loop) } catch {
            onAcceptError?(error)
            return
        }
        let acceptStatus = uv_accept(cuv_tcp_as_stream(handle), client.stream)
        if acceptStatus < 0 {
            client.close()
            onAcceptError?(UVError(acceptStatus))
            return
        }
        client.setNoDelay()
        if let onConnection { onConnection(client) } else { client.close() }
    }

    public func close() {
        guard !isClosing else { return }
        isClosing = true
        uv_close(cuv_tcp_as_handle(handle)) { raw in
            let unmanaged = Unmanaged<TCPListener>.fromOpaque(raw!.pointee.data)
            let this = unmanaged.takeUnretainedValue()
            this.handle.deallocate()
            this.onConnection = nil
            this.onAcceptError = nil
            unmanaged.release()
        }
    }
}

@available(*, unavailable)
extension TCPListener: Sendable {}
