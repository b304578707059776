/// A close status code (RFC 6455 §7.4). A struct rather than an enum: the application range
/// 3000–4999 is open-ended.
public struct WebSocketCloseCode: RawRepresentable, Sendable, Equatable, Hashable {
    public var rawValue: UInt16

    public init(rawValue: UInt16) { self.rawValue = rawValue }
    public init(_ rawValue: UInt16) { self.rawValue = rawValue }

    public static let normalClosure = Self(1000)
    public static let goingAway = Self(1001)
    public static let protocolError = Self(1002)
    public static let unacceptableData = Self(1003)
    /// Reported (never sent) when a close frame had no status code.
    public static let noStatusReceived = Self(1005)
    /// Reported (never sent) when the connection ended without a close frame.
    public static let abnormalClosure = Self(1006)
    public static let invalidFramePayloadData = Self(1007)
    public static let policyViolation = Self(1008)
    public static let messageTooBig = Self(1009)
    public static let mandatoryExtension = Self(1010)
    public static let internalServerError = Self(1011)

    /// Whether a peer may put this code in a close frame. 1000–1003 and 1007–1011 are the
    /// RFC's; 1012–1014 (service restart, try again later, bad gateway) are registered with
    /// IANA and sent by the Node.js `ws` servers we talk to, so they are accepted too.
    /// 1004–1006 and 1015 are reserved and must never be on the wire; 1016–2999 are reserved
    /// for future RFCs; 3000–4999 belong to libraries and applications.
    public var isValidOnTheWire: Bool {
        switch rawValue {
        case 1000...1003, 1007...1014, 3000...4999: return true
        default: return false
        }
    }
}
