import AVRProtocol

/// Log lines `[LEVEL]: message` on standard output, one write per line.
public struct Logger: Sendable {
    public enum Level: Int, Sendable, Comparable {
        case trace, debug, info, warn, error
        public static func < (a: Level, b: Level) -> Bool { a.rawValue < b.rawValue }
        var label: String {
            switch self {
            case .trace: "TRACE"
            case .debug: "DEBUG"
            case .info: "INFO"
            case .warn: "WARN"
            case .error: "ERROR"
            }
        }
    }

    public var level: Level
    /// Prepended to every message (e.g. a call's uuid).
    public var prefix: String

    public init(level: Level, prefix: String = "") {
        self.level = level
        self.prefix = prefix
    }

    /// The same destination and level, with `prefix` added to each message.
    public func with(prefix: String) -> Logger { Logger(level: level, prefix: self.prefix + prefix) }

    @inline(__always) public func isEnabled(_ level: Level) -> Bool { level >= self.level }

    public func trace(_ message: @autoclosure () -> String) { if isEnabled(.trace) { emit(.trace, message()) } }
    public func debug(_ message: @autoclosure () -> String) { if isEnabled(.debug) { emit(.debug, message()) } }
    public func info(_ message: @autoclosure () -> String) { if isEnabled(.info) { emit(.info, message()) } }
    public func warn(_ message: @autoclosure () -> String) { if isEnabled(.warn) { emit(.warn, message()) } }
    public func error(_ message: @autoclosure () -> String) { if isEnabled(.error) { emit(.error, message()) } }

    private func emit(_ level: Level, _ message: String) {
        var line = "[\(level.label)]: \(prefix)\(message)\n"
        line.withUTF8 { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = writeStdout(bytes.baseAddress! + offset, bytes.count - offset)
                if written <= 0 { break }
                offset += written
            }
        }
    }
}

extension Logger.Level {
    public init(_ level: LogLevel) {
        switch level {
        case .debug: self = .debug
        case .info: self = .info
        case .warn: self = .warn
        case .error: self = .error
        }
    }
}
