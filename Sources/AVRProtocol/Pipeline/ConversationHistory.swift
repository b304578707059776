// STAND-IN (backend branch): the real history comes from the "parsers" branch at merge.
// Only the contract's API.

/// The conversation the core keeps, and the request bodies it makes.
public struct ConversationHistory: Sendable {
    private var messages: [(role: String, content: String)] = []

    public init() {}

    public mutating func addUser(_ text: String) { messages.append(("user", text)) }
    public mutating func addAssistant(_ text: String) { messages.append(("assistant", text)) }

    public func llmRequestBody(uuid: String, message: String) -> [UInt8] {
        let list = JSONValue.array(messages.map { .object(["role": .string($0.role), "content": .string($0.content)]) })
        var out: [UInt8] = []
        JSONValue.object(["uuid": .string(uuid), "message": .string(message), "messages": list]).serialize(into: &out)
        return out
    }

    public static func ttsRequestBody(text: String) -> [UInt8] {
        var out: [UInt8] = []
        JSONValue.object(["text": .string(text)]).serialize(into: &out)
        return out
    }
}
