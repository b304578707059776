/// Numeric IP addresses as text (`BIND_ADDRESS`): a listener binds an address, never a name,
/// so a value that is not a literal is refused at start-up rather than resolved.
package enum IPLiteral {
    /// Dotted decimal, four parts of 0–255 without leading zeros (`0.0.0.0`, `127.0.0.1`).
    package static func isIPv4(_ text: some StringProtocol) -> Bool {
        let parts = text.utf8.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard parts.count == 4 else { return false }
        for part in parts {
            guard (1...3).contains(part.count), part.allSatisfy(isDigit) else { return false }
            if part.count > 1 && part.first == UInt8(ascii: "0") { return false }
            let value = part.reduce(0) { $0 * 10 + Int($1 - UInt8(ascii: "0")) }
            guard value <= 255 else { return false }
        }
        return true
    }

    /// RFC 4291 text: eight groups of 1–4 hex digits, one `::` standing for one or more zero
    /// groups, the last two groups optionally as dotted IPv4 (`::ffff:127.0.0.1`). No zone
    /// (`%eth0`) and no brackets.
    package static func isIPv6(_ text: some StringProtocol) -> Bool {
        var utf8 = Array(text.utf8)
        guard utf8.count >= 2, utf8.count <= 45 else { return false }
        var groups = 0
        // An embedded IPv4 address counts as two groups.
        if let lastColon = utf8.lastIndex(of: UInt8(ascii: ":")), utf8[(lastColon + 1)...].contains(UInt8(ascii: ".")) {
            guard isIPv4(String(decoding: utf8[(lastColon + 1)...], as: UTF8.self)) else { return false }
            groups += 2
            // Keep the colon: "::1.2.3.4" must still read as "::" followed by nothing.
            utf8.removeSubrange((lastColon + 1)...)
            if utf8.count >= 2, utf8[utf8.count - 2] != UInt8(ascii: ":") {
                utf8.removeLast()
            }
        }
        let doubleColons = zip(utf8, utf8.dropFirst()).enumerated().filter {
            $0.element.0 == UInt8(ascii: ":") && $0.element.1 == UInt8(ascii: ":")
        }
        guard doubleColons.count <= 1 else { return false }
        if doubleColons.count == 1 {
            let at = doubleColons[0].offset
            let left = Array(utf8[..<at])
            let right = Array(utf8[(at + 2)...])
            guard let leftGroups = hexGroups(left), let rightGroups = hexGroups(right) else { return false }
            return leftGroups + rightGroups + groups <= 7
        }
        guard let all = hexGroups(utf8) else { return false }
        return all + groups == 8
    }

    /// Either kind.
    package static func isIP(_ text: some StringProtocol) -> Bool { isIPv4(text) || isIPv6(text) }

    /// Colon-separated groups of 1–4 hex digits (empty: zero groups); nil when malformed.
    private static func hexGroups(_ bytes: [UInt8]) -> Int? {
        if bytes.isEmpty { return 0 }
        let groups = bytes.split(separator: UInt8(ascii: ":"), omittingEmptySubsequences: false)
        for group in groups {
            guard (1...4).contains(group.count), group.allSatisfy(isHex) else { return nil }
        }
        return groups.count
    }

    private static func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }
    private static func isHex(_ byte: UInt8) -> Bool {
        isDigit(byte) || ((byte | 0x20) >= UInt8(ascii: "a") && (byte | 0x20) <= UInt8(ascii: "f"))
    }
}
