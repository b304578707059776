// STAND-IN (backend branch) until the lead's speech seam lands on main.

/// Who said a transcript's text.
public enum TranscriptRole: Sendable, Equatable {
    case user, agent
}
