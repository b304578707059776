/// The signature a webhook request carries when `WEBHOOK_SECRET` is set (docs/PROTOCOLS.md,
/// "Signed webhooks"):
///
///     X-AVR-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>
///
/// The timestamp is inside what is signed, so a receiver that refuses old timestamps cannot
/// be fed a recorded request again later; the body is signed as the exact bytes sent (it is
/// serialised once per event, and every attempt sends those bytes). Each attempt is signed
/// anew with the time of that attempt, so a retry after a long backoff is not stale.
/// `v1` names the scheme, so another one can be added beside it without breaking receivers.
package struct WebhookSignature: Sendable {
    /// The header's name.
    package static let headerName = "X-AVR-Signature"

    private let mac: HMACSHA256

    /// `secret` as configured (`WEBHOOK_SECRET`), its UTF-8 bytes being the HMAC key.
    package init(secret: String) {
        mac = HMACSHA256(key: Array(secret.utf8))
    }

    /// The header value for `body` sent at `unixSeconds`.
    package func headerValue(body: [UInt8], unixSeconds: Int64) -> String {
        let stamp = String(unixSeconds)
        return "t=\(stamp),v1=\(code(stamp: stamp, body: body))"
    }

    /// Hex HMAC of `"<stamp>.<body>"`, `stamp` being the timestamp's text as sent.
    private func code(stamp: Substring.UTF8View, body: [UInt8]) -> String {
        HMACSHA256.hex(mac.authenticationCode(of: Array(stamp), [UInt8(ascii: ".")], body))
    }

    private func code(stamp: String, body: [UInt8]) -> String {
        code(stamp: Substring(stamp).utf8, body: body)
    }

    /// Why a receiver refuses a request (see `verify`).
    package enum Rejection: Error, Equatable, Sendable {
        /// No `t=` with a decimal number, or no `v1=`.
        case malformedHeader
        /// The timestamp is further from the receiver's clock than the tolerance.
        case staleTimestamp
        /// No `v1` value matches the body (tampered, or another secret).
        case mismatch
    }

    /// What a receiver does, written out for the tests and as a reference: parse
    /// `t=…,v1=…` (several `v1` are allowed, any may match), refuse a timestamp more than
    /// `toleranceSeconds` away from `nowSeconds`, recompute the HMAC over `"<t>.<body>"`
    /// and compare in constant time.
    package func verify(headerValue: String, body: [UInt8], nowSeconds: Int64,
                        toleranceSeconds: Int64 = 300) throws(Rejection) {
        var timestamp: (text: Substring, value: Int64)?
        var candidates: [String] = []
        for item in headerValue.split(separator: ",") {
            let pair = item.split(separator: "=", maxSplits: 1)
            guard pair.count == 2 else { continue }
            let key = pair[0].trimmingSpaces
            let value = pair[1].trimmingSpaces
            if key == "t", value.utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }) {
                timestamp = Int64(value).map { (value, $0) }
            } else if key == "v1" {
                candidates.append(String(value))
            }
        }
        guard let timestamp, !candidates.isEmpty else { throw .malformedHeader }
        guard timestamp.value >= nowSeconds - toleranceSeconds, timestamp.value <= nowSeconds + toleranceSeconds else {
            throw .staleTimestamp
        }
        let expected = Array(code(stamp: timestamp.text.utf8, body: body).utf8)
        var matched = false
        for candidate in candidates where Self.constantTimeEquals(Array(candidate.utf8), expected) {
            matched = true
        }
        guard matched else { throw .mismatch }
    }

    private static func constantTimeEquals(_ lhs: [UInt8], _ rhs: [UInt8]) -> Bool {
        guard lhs.count == rhs.count else { return false }
        var difference: UInt8 = 0
        for index in lhs.indices { difference |= lhs[index] ^ rhs[index] }
        return difference == 0
    }
}

extension Substring {
    fileprivate var trimmingSpaces: Substring {
        var text = self
        while text.first == " " { text.removeFirst() }
        while text.last == " " { text.removeLast() }
        return text
    }
}
