/// An error answer of an ASR, LLM or TTS module, as one line for the log.
///
/// Modules answer `{"message":…}`, `{"error":…}` (a string, or an object with a `message`
/// as OpenAI-style APIs do), `{"detail":…}` (FastAPI), or plain text. Control characters
/// become spaces (one log line, no injected lines) and the text is cut at
/// `maximumCharacters`.
package enum ModuleErrorBody {
    package static let maximumCharacters = 300

    package static func describe(status: Int, body: [UInt8]) -> String {
        let text = message(body)
        return text.isEmpty ? "HTTP \(status) (empty body)" : "HTTP \(status): \(text)"
    }

    static func message(_ body: [UInt8]) -> String {
        if let value = try? JSONValue.parse(body), let object = value.objectValue {
            for key in ["message", "error", "detail", "content"] {
                guard let member = object[key] else { continue }
                if let text = member.stringValue { return oneLine(text) }
                if let nested = member["message"]?.stringValue { return oneLine(nested) }
                return oneLine(member.serialized())
            }
            return oneLine(value.serialized())
        }
        return oneLine(String(decoding: body, as: UTF8.self))
    }

    /// Control characters and whitespace runs → one space, trimmed, cut with `…`.
    static func oneLine(_ text: String) -> String {
        var out = String.UnicodeScalarView()
        var count = 0
        var spacePending = false
        for scalar in text.unicodeScalars {
            if scalar.value < 0x20 || scalar.value == 0x7F || scalar == " " || scalar.value == 0x2028 || scalar.value == 0x2029
                || (0x80...0x9F).contains(scalar.value)
            {
                spacePending = !out.isEmpty
                continue
            }
            if count >= maximumCharacters {
                out.append("…")
                break
            }
            if spacePending {
                out.append(" ")
                count += 1
                spacePending = false
            }
            out.append(scalar)
            count += 1
        }
        return String(out)
    }
}
