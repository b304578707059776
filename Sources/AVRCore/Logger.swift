import AVRProtocol
import Logging

/// The server's logger: a thin front over an apple/swift-log `Logging.Logger`.
///
/// Call sites keep their shape (`log.info("...")`, message built only when the level is on);
/// what a line is about (a call's uuid, a loop) travels as swift-log metadata, which
/// `AVRLogHandler` prints as today's `[LEVEL]: [uuid] message` lines or, with
/// `LOG_FORMAT=json`, as one JSON object per line with every metadata key as a field.
package struct Logger: Sendable {
    package enum Level: Int, Sendable, Comparable {
        case trace, debug, info, warn, error
        package static func < (a: Level, b: Level) -> Bool { a.rawValue < b.rawValue }

        var swiftLogLevel: Logging.Logger.Level {
            switch self {
            case .trace: .trace
            case .debug: .debug
            case .info: .info
            case .warn: .warning
            case .error: .error
            }
        }
    }

    package var level: Level
    /// The swift-log logger every line goes through (its metadata is the line's context).
    package private(set) var backend: Logging.Logger

    /// Lines on standard output in `format`.
    package init(level: Level, format: LogFormat = .text) {
        self.init(level: level, backend: Logging.Logger(label: "avr-core") { _ in AVRLogHandler(format: format) })
    }

    /// Lines through any swift-log logger (tests collect them; `LoggingSystem` users plug in theirs).
    package init(level: Level, backend: Logging.Logger) {
        self.level = level
        var backend = backend
        backend.logLevel = level.swiftLogLevel
        self.backend = backend
    }

    /// The same destination and level, with `key` set to `value` on every line.
    package func with(_ key: String, _ value: String) -> Logger {
        var copy = self
        copy.backend[metadataKey: key] = .string(value)
        return copy
    }

    /// Kept for call sites written before metadata (other branches): `prefix` is prepended to
    /// each message. Prefer `with(_:_:)`, which a log pipeline can filter on.
    package func with(prefix: String) -> Logger {
        var copy = self
        copy.prefix += prefix
        return copy
    }

    /// Prepended to every message (empty unless `with(prefix:)` was used).
    package private(set) var prefix = ""

    /// A call's logger: its uuid on every line, and a fresh `PeerLogBudget` that every
    /// logger made from it shares (the STS client's, the pipeline's).
    package func with(uuid: CallUUID) -> Logger {
        var copy = with("uuid", uuid.description)
        copy.budget = PeerLogBudget()
        return copy
    }

    /// The same logger with a budget of its own (for a component outside any call whose lines
    /// a peer could multiply, such as the webhook dispatcher's drop lines).
    package func withOwnBudget() -> Logger {
        var copy = self
        copy.budget = PeerLogBudget()
        return copy
    }

    /// Replaces the budget (tests: one with a clock of their own).
    mutating func setBudget(_ budget: PeerLogBudget) { self.budget = budget }

    /// The call's budget for lines a peer causes once per message (nil outside a call: such
    /// lines are then written as any other).
    package private(set) var budget: PeerLogBudget?

    /// A line a peer can cause once per message (a DTMF digit, a transcript, an STS error):
    /// written within the call's budget for `kind`, counted otherwise; the first line after
    /// some were held back is preceded by `suppressed N similar lines (<kind>)`. The message
    /// is only built when the line is written.
    package func limited(_ kind: PeerLogKind, _ level: Level, _ message: @autoclosure () -> String) {
        guard isEnabled(level) else { return }
        guard let budget else { return emit(level, message()) }
        switch budget.admit(kind) {
        case .suppress:
            budget.levels[kind.rawValue] = level
            return
        case .write(let suppressed):
            if suppressed > 0 { emit(level, Self.summary(suppressed, kind)) }
            emit(level, message())
        }
    }

    /// End of the call: a summary line for each kind with lines held back since its last one.
    package func flushSuppressed() {
        guard let budget else { return }
        for (kind, count) in budget.drainSuppressed() where isEnabled(budget.levels[kind.rawValue]) {
            emit(budget.levels[kind.rawValue], Self.summary(count, kind))
        }
    }

    private static func summary(_ count: Int, _ kind: PeerLogKind) -> String {
        "suppressed \(count) similar line\(count == 1 ? "" : "s") (\(kind))"
    }

    @inline(__always) package func isEnabled(_ level: Level) -> Bool { level >= self.level }

    package func trace(_ message: @autoclosure () -> String) { if isEnabled(.trace) { emit(.trace, message()) } }
    package func debug(_ message: @autoclosure () -> String) { if isEnabled(.debug) { emit(.debug, message()) } }
    package func info(_ message: @autoclosure () -> String) { if isEnabled(.info) { emit(.info, message()) } }
    package func warn(_ message: @autoclosure () -> String) { if isEnabled(.warn) { emit(.warn, message()) } }
    package func error(_ message: @autoclosure () -> String) { if isEnabled(.error) { emit(.error, message()) } }

    /// A line with extra fields of its own (the per-call quality line): in JSON they are
    /// fields of the object, in text they follow the message as `key=value`.
    package func info(_ message: String, fields: Logging.Logger.Metadata) {
        guard isEnabled(.info) else { return }
        backend.log(level: .info, Logging.Logger.Message(stringLiteral: prefix + message), metadata: fields)
    }

    private func emit(_ level: Level, _ message: String) {
        backend.log(level: level.swiftLogLevel, Logging.Logger.Message(stringLiteral: prefix.isEmpty ? message : prefix + message))
    }
}

extension Logger.Level {
    package init(_ level: LogLevel) {
        switch level {
        case .debug: self = .debug
        case .info: self = .info
        case .warn: self = .warn
        case .error: self = .error
        }
    }
}

/// One call's `LogRateLimiter`, shared by the loggers made from the call's logger.
///
/// A reference (a call's loggers are values, copied into its backends) used only on the
/// call's loop thread, hence `@unchecked Sendable`. Its clock is the monotonic one.
package final class PeerLogBudget: @unchecked Sendable {
    private var limiter: LogRateLimiter
    private let clock: () -> UInt64
    /// Per kind, the level of its last line held back: the end-of-call summary's level.
    var levels = [Logger.Level](repeating: .info, count: PeerLogKind.allCases.count)

    /// `clock`: monotonic milliseconds (tests pass their own).
    package init(limiter: LogRateLimiter = LogRateLimiter(),
                 clock: @escaping () -> UInt64 = { MonotonicClock.milliseconds() }) {
        self.limiter = limiter
        self.clock = clock
    }

    func admit(_ kind: PeerLogKind) -> LogRateLimiter.Decision { limiter.admit(kind, now: clock()) }

    func drainSuppressed() -> [(kind: PeerLogKind, count: Int)] { limiter.drainSuppressed() }
}

/// Our swift-log `LogHandler`: one `write` per line on standard output.
///
/// Text: `[LEVEL]: [uuid] message`, the AVR convention (only `uuid` of the logger's metadata
/// is shown, as the prefix lines always had; a line's own fields follow as `key=value`).
/// JSON: `{"time":"…Z","level":"info","message":"…","uuid":"…",…}`, every metadata key a field.
package struct AVRLogHandler: LogHandler {
    package var format: LogFormat
    package var logLevel: Logging.Logger.Level = .info
    package var metadata: Logging.Logger.Metadata = [:]
    package var metadataProvider: Logging.Logger.MetadataProvider?
    /// Where a finished line goes (standard output unless a test collects them).
    var sink: @Sendable ([UInt8]) -> Void

    package init(format: LogFormat) {
        self.format = format
        sink = AVRLogHandler.writeToStandardOutput
    }

    init(format: LogFormat, sink: @escaping @Sendable ([UInt8]) -> Void) {
        self.format = format
        self.sink = sink
    }

    package subscript(metadataKey key: String) -> Logging.Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    /// Every message and string field passes through `URLRedactor` here, whatever the call
    /// site: a URL's userinfo, query values and fragment never reach the log.
    package func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { _, new in new } }
        let own = Self.redacted(event.metadata ?? [:])
        let message = URLRedactor.redact(in: event.message.description)
        let line = switch format {
        case .text: Self.textLine(level: event.level, message: message, context: merged, fields: own)
        case .json:
            Self.jsonLine(time: WallClock.unixMilliseconds(), level: event.level, message: message,
                          context: merged.merging(own) { _, new in new })
        }
        sink(line)
    }

    /// A line outside any logger, in `format` and redacted like every other: start-up errors
    /// (a configuration that cannot be used) written before the logger exists.
    package static func standaloneLine(_ level: Logging.Logger.Level, _ message: String, format: LogFormat) -> [UInt8] {
        let message = URLRedactor.redact(in: message)
        return switch format {
        case .text: textLine(level: level, message: message, context: [:], fields: [:])
        case .json: jsonLine(time: WallClock.unixMilliseconds(), level: level, message: message, context: [:])
        }
    }

    private static func redacted(_ fields: Logging.Logger.Metadata) -> Logging.Logger.Metadata {
        guard fields.values.contains(where: { if case .string = $0 { true } else { false } }) else { return fields }
        return fields.mapValues { value in
            if case .string(let text) = value { return .string(URLRedactor.redact(in: text)) }
            return value
        }
    }

    static func label(_ level: Logging.Logger.Level) -> String {
        switch level {
        case .trace: "TRACE"
        case .debug: "DEBUG"
        case .info, .notice: "INFO"
        case .warning: "WARN"
        case .error, .critical: "ERROR"
        }
    }

    /// The message and the fields are escaped here, once for every call site
    /// (`LogTextEscaper`): text from a peer can never end the line or forge another.
    static func textLine(level: Logging.Logger.Level, message: String, context: Logging.Logger.Metadata,
                         fields: Logging.Logger.Metadata) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(64 + message.utf8.count)
        bytes.append(UInt8(ascii: "["))
        bytes.append(contentsOf: label(level).utf8)
        bytes.append(contentsOf: "]: ".utf8)
        if let uuid = context["uuid"] {
            bytes.append(UInt8(ascii: "["))
            LogTextEscaper.append(uuid.description, to: &bytes)
            bytes.append(contentsOf: "] ".utf8)
        }
        LogTextEscaper.append(message, to: &bytes)
        for (key, value) in fields.sorted(by: { $0.key < $1.key }) {
            bytes.append(UInt8(ascii: " "))
            LogTextEscaper.append(key, to: &bytes)
            bytes.append(UInt8(ascii: "="))
            LogTextEscaper.append(value.description, to: &bytes)
        }
        bytes.append(UInt8(ascii: "\n"))
        return bytes
    }

    /// Keys in a fixed order (time, level, message, then metadata sorted) so lines diff well.
    static func jsonLine(time: Int64, level: Logging.Logger.Level, message: String,
                         context: Logging.Logger.Metadata) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(128 + message.utf8.count)
        bytes.append(contentsOf: #"{"time":""#.utf8)
        ISO8601Timestamp.append(unixMilliseconds: time, to: &bytes)
        bytes.append(contentsOf: #"","level":""#.utf8)
        bytes.append(contentsOf: label(level).lowercased().utf8)
        bytes.append(contentsOf: #"","message":"#.utf8)
        JSONValue.appendQuoted(message, to: &bytes)
        for (key, value) in context.sorted(by: { $0.key < $1.key })
        where key != "time" && key != "level" && key != "message" {
            bytes.append(UInt8(ascii: ","))
            JSONValue.appendQuoted(key, to: &bytes)
            bytes.append(UInt8(ascii: ":"))
            appendJSON(value, to: &bytes)
        }
        bytes.append(contentsOf: "}\n".utf8)
        return bytes
    }

    /// Strings stay strings; `stringConvertible` values that read as JSON numbers are numbers.
    private static func appendJSON(_ value: Logging.Logger.Metadata.Value, to bytes: inout [UInt8]) {
        switch value {
        case .string(let text):
            JSONValue.appendQuoted(text, to: &bytes)
        case .stringConvertible(let convertible):
            let text = convertible.description
            if convertible is any BinaryInteger || (convertible is Double && Double(text)?.isFinite == true) {
                bytes.append(contentsOf: text.utf8)
            } else {
                JSONValue.appendQuoted(text, to: &bytes)
            }
        case .array(let values):
            bytes.append(UInt8(ascii: "["))
            for (index, element) in values.enumerated() {
                if index > 0 { bytes.append(UInt8(ascii: ",")) }
                appendJSON(element, to: &bytes)
            }
            bytes.append(UInt8(ascii: "]"))
        case .dictionary(let entries):
            bytes.append(UInt8(ascii: "{"))
            for (index, (key, element)) in entries.sorted(by: { $0.key < $1.key }).enumerated() {
                if index > 0 { bytes.append(UInt8(ascii: ",")) }
                JSONValue.appendQuoted(key, to: &bytes)
                bytes.append(UInt8(ascii: ":"))
                appendJSON(element, to: &bytes)
            }
            bytes.append(UInt8(ascii: "}"))
        }
    }

    @Sendable static func writeToStandardOutput(_ line: [UInt8]) {
        line.withUnsafeBufferPointer { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = writeStdout(bytes.baseAddress! + offset, bytes.count - offset)
                if written <= 0 { break }
                offset += written
            }
        }
    }
}
