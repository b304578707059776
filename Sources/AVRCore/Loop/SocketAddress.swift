internal import CUV

/// An IPv4 or IPv6 socket address.
package struct SocketAddress: CustomStringConvertible, Sendable {
    var storage = sockaddr_storage()

    init(copying address: UnsafePointer<sockaddr>) {
        let length = cuv_addr_len(address)
        withUnsafeMutableBytes(of: &storage) { dest in
            dest.copyMemory(from: UnsafeRawBufferPointer(start: address, count: length))
        }
    }

    /// A numeric address ("127.0.0.1", "::1"); nil when `host` is not a literal IP.
    package init?(numericHost host: String, port: Int) {
        var v4 = sockaddr_in()
        if uv_ip4_addr(host, Int32(port), &v4) == 0 {
            withUnsafeMutableBytes(of: &storage) { dest in
                withUnsafeBytes(of: &v4) { dest.copyMemory(from: $0) }
            }
            return
        }
        var v6 = sockaddr_in6()
        var bare = host
        if bare.hasPrefix("[") && bare.hasSuffix("]") { bare = String(bare.dropFirst().dropLast()) }
        if uv_ip6_addr(bare, Int32(port), &v6) == 0 {
            withUnsafeMutableBytes(of: &storage) { dest in
                withUnsafeBytes(of: &v6) { dest.copyMemory(from: $0) }
            }
            return
        }
        return nil
    }

    package var port: Int {
        get { withSockaddr { Int(cuv_addr_port($0)) } }
        set {
            withUnsafeMutableBytes(of: &storage) { raw in
                cuv_addr_set_port(raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), Int32(newValue))
            }
        }
    }

    func withSockaddr<R>(_ body: (UnsafePointer<sockaddr>) -> R) -> R {
        withUnsafeBytes(of: storage) { raw in body(raw.baseAddress!.assumingMemoryBound(to: sockaddr.self)) }
    }

    package var description: String {
        Int32(storage.ss_family) == AF_INET6 ? "[\(numericHost)]:\(port)" : "\(numericHost):\(port)"
    }

    /// The address alone, as text (`127.0.0.1`, `::1`).
    var numericHost: String {
        var name = [CChar](repeating: 0, count: 64)
        let family = Int32(storage.ss_family)
        withSockaddr { addr in
            if family == AF_INET6 {
                addr.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { _ = uv_ip6_name($0, &name, name.count) }
            } else {
                addr.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { _ = uv_ip4_name($0, &name, name.count) }
            }
        }
        return String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
