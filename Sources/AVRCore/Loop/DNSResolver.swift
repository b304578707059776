internal import CUV

/// Name resolution through `uv_getaddrinfo` (libuv's thread pool), results on the loop.
package enum DNSResolver {
    /// Resolves `host` for a TCP connection to `port`. A literal IP skips the resolver.
    package static func resolve(loop: EventLoop, host: String, port: Int,
                               completion: @escaping (Result<[SocketAddress], UVError>) -> Void) {
        if let literal = SocketAddress(numericHost: host, port: port) {
            completion(.success([literal]))
            return
        }
        let request = UnsafeMutablePointer<uv_getaddrinfo_t>.allocate(capacity: 1)
        request.pointee.data = Unmanaged.passRetained(ResolveContext(port: port, completion: completion)).toOpaque()
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        let status = uv_getaddrinfo(loop.raw, request, { request, status, result in
            let context = Unmanaged<ResolveContext>.fromOpaque(request!.pointee.data).takeRetainedValue()
            request!.deallocate()
            defer { if let result { uv_freeaddrinfo(result) } }
            if status < 0 {
                context.completion(.failure(UVError(status)))
                return
            }
            var addresses: [SocketAddress] = []
            var cursor = result
            while let entry = cursor {
                if let address = entry.pointee.ai_addr,
                   entry.pointee.ai_family == AF_INET || entry.pointee.ai_family == AF_INET6 {
                    var socketAddress = SocketAddress(copying: address)
                    socketAddress.port = context.port
                    addresses.append(socketAddress)
                }
                cursor = entry.pointee.ai_next
            }
            context.completion(addresses.isEmpty ? .failure(UVError(UV_EAI_NONAME.rawValue)) : .success(addresses))
        }, host, nil, &hints)
        if status < 0 {
            Unmanaged<ResolveContext>.fromOpaque(request.pointee.data).release()
            request.deallocate()
            completion(.failure(UVError(status)))
        }
    }
}

private final class ResolveContext {
    let port: Int
    let completion: (Result<[SocketAddress], UVError>) -> Void
    init(port: Int, completion: @escaping (Result<[SocketAddress], UVError>) -> Void) {
        self.port = port
        self.completion = completion
    }
}
