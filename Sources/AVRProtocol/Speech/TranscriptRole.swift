/// Who said the words of a transcript.
package enum TranscriptRole: Equatable, Hashable, Sendable, CustomStringConvertible {
    /// The caller.
    case user
    /// The AI agent.
    case agent
    /// A role a speech service named that is neither; passed on as it came.
    case other(String)

    /// Reads a service's `role` field ("user", "agent"; anything else is kept as it is).
    package init(label: String) {
        switch label {
        case "user": self = .user
        case "agent": self = .agent
        default: self = .other(label)
        }
    }

    /// The `role` of the `transcription` webhook.
    package var label: String {
        switch self {
        case .user: "user"
        case .agent: "agent"
        case .other(let label): label
        }
    }

    package var description: String { label }
}
