/// A request target in absolute form (`http://host:port/path?query`), as a client talking to
/// a proxy sends it. RFC 9112 section 3.2.2: a server must accept it, route by its path, and
/// take the target's authority as the request's host, ignoring any Host header.
package struct AbsoluteFormTarget: Equatable, Sendable {
    /// `host[:port]` (userinfo, if any, dropped).
    package let authority: String
    /// The path and query (`/` when the target has no path).
    package let originForm: String

    /// nil unless `target` starts with `http://` or `https://` (any case).
    package init?(_ target: String) {
        let bytes = Array(target.utf8)
        let schemeEnd: Int
        if Self.hasPrefix(bytes, "http://") {
            schemeEnd = 7
        } else if Self.hasPrefix(bytes, "https://") {
            schemeEnd = 8
        } else {
            return nil
        }
        let rest = bytes[schemeEnd...]
        let pathStart = rest.firstIndex { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "?") } ?? bytes.endIndex
        var authority = bytes[schemeEnd..<pathStart]
        if let at = authority.lastIndex(of: UInt8(ascii: "@")) { authority = authority[(at + 1)...] }
        self.authority = String(decoding: authority, as: UTF8.self)
        let path = bytes[pathStart...]
        originForm = path.first == UInt8(ascii: "/") ? String(decoding: path, as: UTF8.self)
            : "/" + String(decoding: path, as: UTF8.self)
    }

    private static func hasPrefix(_ bytes: [UInt8], _ prefix: String) -> Bool {
        let prefix = Array(prefix.utf8)
        guard bytes.count >= prefix.count else { return false }
        for (byte, expected) in zip(bytes, prefix) where byte | 0x20 != expected | 0x20 {
            return false
        }
        return true
    }
}
