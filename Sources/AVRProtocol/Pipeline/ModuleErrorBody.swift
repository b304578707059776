// STAND-IN (backend branch): the real one comes from the "parsers" branch at merge.

/// An error body ({"message"} / {"error"} / plain text) → one line for the log.
public enum ModuleErrorBody {
    public static func describe(status: Int, body: [UInt8]) -> String {
        if let value = try? JSONValue.parse(body) {
            if let message = value["message"]?.stringValue ?? value["error"]?.stringValue {
                return "HTTP \(status): \(message)"
            }
        }
        let text = String(decoding: body.prefix(200), as: UTF8.self)
            .split(whereSeparator: { $0.isNewline }).joined(separator: " ")
        return text.isEmpty ? "HTTP \(status)" : "HTTP \(status): \(text)"
    }
}
