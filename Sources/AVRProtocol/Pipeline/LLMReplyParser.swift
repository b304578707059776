// STAND-IN (backend branch): the real parser comes from the "parsers" branch at merge.
// Only the contract's API; minimal behaviour so the backend can run end to end.

/// LLM response body: back-to-back JSON objects {"type":"text","content":…}, or plain text.
public enum LLMReplyEvent: Equatable, Sendable {
    case text(String), status(String), error(String), ignored(type: String)
}

public struct LLMReplyParser: Sendable {
    private var buffer: [UInt8] = []
    private var depth = 0
    private var inString = false
    private var escaped = false
    private var start = 0

    public init() {}

    public mutating func append(_ bytes: UnsafeRawBufferPointer) -> [LLMReplyEvent] {
        var events: [LLMReplyEvent] = []
        for byte in bytes {
            if depth == 0 && byte != UInt8(ascii: "{") {
                if byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 { continue }
            }
            buffer.append(byte)
            if inString {
                if escaped { escaped = false } else if byte == UInt8(ascii: "\\") { escaped = true } else if byte == UInt8(ascii: "\"") { inString = false }
                continue
            }
            if byte == UInt8(ascii: "\"") && depth > 0 { inString = true }
            if byte == UInt8(ascii: "{") { depth += 1 }
            if byte == UInt8(ascii: "}") && depth > 0 {
                depth -= 1
                if depth == 0 {
                    events.append(Self.event(buffer))
                    buffer = []
                }
            }
            if depth == 0 && !buffer.isEmpty && buffer.first != UInt8(ascii: "{") {
                events.append(.text(String(decoding: buffer, as: UTF8.self)))
                buffer = []
            }
        }
        return events
    }

    public mutating func finish() -> [LLMReplyEvent] {
        defer { buffer = [] }
        return buffer.isEmpty ? [] : [.text(String(decoding: buffer, as: UTF8.self))]
    }

    private static func event(_ bytes: [UInt8]) -> LLMReplyEvent {
        guard let value = try? JSONValue.parse(bytes) else { return .text(String(decoding: bytes, as: UTF8.self)) }
        let type = value["type"]?.stringValue ?? ""
        let content = value["content"]?.stringValue ?? ""
        switch type {
        case "text": return .text(content)
        case "status": return .status(content)
        case "error": return .error(content)
        default: return .ignored(type: type)
        }
    }
}
