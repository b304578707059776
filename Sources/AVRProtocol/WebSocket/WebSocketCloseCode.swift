/// A close status code (RFC 6455 §7.4). A struct rather than an enum: the application range
/// 3000–4999 is open-ended.
package struct WebSocketCloseCode: RawRepresentable, Sendable, Equatable, Hashable {
    package var rawValue: UInt16

    package init(rawValue: UInt16) { self.rawValue = rawValue }
    package init(_ rawValue: UInt16) { self.rawValue = rawValue }

    package static let normalClosure = Self(1000)
    package static let goingAway = Self(1001)
    package static let protocolError = Self(1002)
    package static let unacceptableData = Self(1003)
    /// Reported (never sent) when a close frame had no status code.
    package static let noStatusReceived = Self(1005)
    /// Reported (never sent) when the connection ended without a close frame.
    package static let abnormalClosure = Self(1006)
    package static let invalidFramePayloadData = Self(1007)
    package static let policyViolation = Self(1008)
    package static let messageTooBig = Self(1009)
    package static let mandatoryExtension = Self(1010)
    package static let internalServerError = Self(1011)

    /// Whether a peer may put this code in a close frame. 1000–1003 and 1007–1011 are the
    /// RFC's; 1012–1014 (service restart, try again later, bad gateway) are registered with
    /// IANA and sent by the Node.js `ws` servers we talk to, so they are accepted too.
    /// 1004–1006 and 1015 are reserved and must never be on the wire; 1016–2999 are reserved
    /// for future RFCs; 3000–4999 belong to libraries and applications.
    package var isValidOnTheWire: Bool {
        switch rawValue {
        case 1000...1003, 1007...1014, 3000...4999: return true
        default: return false
        }
    }
}
