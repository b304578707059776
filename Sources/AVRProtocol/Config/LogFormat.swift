/// The `LOG_FORMAT` setting.
package enum LogFormat: String, Sendable, CaseIterable {
    /// `[LEVEL]: message`, a call's uuid in brackets before the message (the default).
    case text
    /// One JSON object per line: `time`, `level`, `message`, then the line's metadata (`uuid`, ...).
    case json
}
