/// The conversation the core keeps for a call, and the request bodies it makes from it.
///
/// `user` for each confirmed transcript and each DTMF digit, `assistant` for each sentence
/// released to playback (`PipelineTurnMachine` decides which). A speculative request is made
/// from a copy with the tentative user text added; it never changes the history itself.
/// The oldest messages are dropped past `maximumMessages`, so a long call's requests stay
/// bounded.
package struct ConversationHistory: Sendable, Equatable {
    package struct Message: Sendable, Equatable {
        package var role: String
        package var content: String
    }

    package let maximumMessages: Int
    package private(set) var messages: [Message] = []

    package init(maximumMessages: Int = 200) {
        self.maximumMessages = max(1, maximumMessages)
    }

    package mutating func addUser(_ text: String) { add(role: "user", text) }
    package mutating func addAssistant(_ text: String) { add(role: "assistant", text) }

    private mutating func add(role: String, _ text: String) {
        messages.append(Message(role: role, content: text))
        if messages.count > maximumMessages { messages.removeFirst(messages.count - maximumMessages) }
    }

    /// `{"uuid":…,"message":…,"messages":[{"role":…,"content":…},…]}`: add the user's
    /// message to the history first, as the modules expect it last in `messages`.
    package func llmRequestBody(uuid: String, message: String) -> [UInt8] {
        let list = JSONValue.array(messages.map { .object(["role": .string($0.role), "content": .string($0.content)]) })
        let body: JSONValue = .object(["uuid": .string(uuid), "message": .string(message), "messages": list])
        var bytes: [UInt8] = []
        body.serialize(into: &bytes)
        return bytes
    }

    /// `{"text":…}`.
    package static func ttsRequestBody(text: String) -> [UInt8] {
        var bytes: [UInt8] = []
        JSONValue.object(["text": .string(text)]).serialize(into: &bytes)
        return bytes
    }
}
