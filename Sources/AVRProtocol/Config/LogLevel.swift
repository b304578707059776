/// The `LOG_LEVEL` setting: messages below it are not written. Ordered from the most
/// verbose to the least.
package enum LogLevel: String, Sendable, CaseIterable, Comparable {
    case debug, info, warn, error

    /// The tag in a log line, `[INFO]: ...`.
    package var label: String {
        switch self {
        case .debug: "DEBUG"
        case .info: "INFO"
        case .warn: "WARN"
        case .error: "ERROR"
        }
    }

    private var rank: Int {
        switch self {
        case .debug: 0
        case .info: 1
        case .warn: 2
        case .error: 3
        }
    }

    package static func < (lhs: LogLevel, rhs: LogLevel) -> Bool { lhs.rank < rhs.rank }
}
