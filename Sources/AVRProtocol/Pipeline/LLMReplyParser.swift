/// One thing the LLM said.
package enum LLMReplyEvent: Equatable, Sendable {
    /// Reply text (a token delta, a sentence or the whole reply): for the sentence splitter.
    case text(String)
    /// `{"type":"status","content":…}`: for the log.
    case status(String)
    /// `{"type":"error","content":…}`, an error body in the stream, or a malformed object.
    case error(String)
    /// An object of an unknown `type` (empty when it has none): logged and ignored.
    case ignored(type: String)
}

/// The LLM response body, parsed incrementally.
///
/// Modules write JSON objects back to back with no framing (`{"type":"text","content":…}`);
/// TCP splits and coalesces them, so objects are cut out by brace depth, with strings and
/// escapes respected, and each complete object goes to `JSONValue.parse`. Whitespace, `,`
/// and SSE framing (`data:` prefixes, `[DONE]`, blank lines) between objects are skipped.
///
/// The body is JSON when its first non-whitespace byte is `{`, or when it starts with
/// `data:` (SSE), a UTF-8 byte order mark skipped; otherwise it is plain text (or markdown), delivered as `.text` as it
/// arrives, with UTF-8 sequences cut between pieces carried over. If the very first object
/// turns out not to be JSON (`{Note} Hello.`), the body is plain text after all, from its
/// first byte. Text events may be cut differently for different splits of the same body;
/// everything else is identical.
package struct LLMReplyParser: Sendable {
    /// An object longer than this is reported as an error and skipped (bounded memory).
    package static let maximumObjectBytes = 1 << 20

    private enum Mode: Sendable { case undecided, json, text }
    private var mode = Mode.undecided
    /// JSON: the bytes of the object being cut out (or, undecided, the bytes seen so far).
    private var object: [UInt8] = []
    private var depth = 0
    private var inString = false
    private var escaped = false
    /// The current object is over the size limit: scanned to its end, not kept.
    private var skippingObject = false
    private var objectsSeen = 0
    /// SSE framing was seen: text between objects is framing, not worth reporting.
    private var sse = false
    /// Non-whitespace bytes between objects not yet reported.
    private var strayBytes = 0
    private var carry = UTF8Carry()
    /// A UTF-8 byte order mark before the first value was skipped (only one is).
    private var bomSkipped = false

    package init() {}

    package mutating func append(_ bytes: UnsafeRawBufferPointer) -> [LLMReplyEvent] {
        var events: [LLMReplyEvent] = []
        var index = 0
        while index < bytes.count {
            switch mode {
            case .text:
                appendText(UnsafeRawBufferPointer(rebasing: bytes[index...]), to: &events)
                return events
            case .undecided:
                index = decide(bytes, from: index, into: &events)
            case .json:
                index = scanJSON(bytes, from: index, into: &events)
            }
        }
        return events
    }

    package mutating func finish() -> [LLMReplyEvent] {
        var events: [LLMReplyEvent] = []
        switch mode {
        case .text:
            let rest = carry.finish()
            if !rest.isEmpty { events.append(.text(rest)) }
        case .undecided:
            // Only whitespace or the start of `data:` was seen: text if anything but whitespace.
            if object.contains(where: { !isASCIIWhitespace($0) }) {
                events.append(.text(String(decoding: object, as: UTF8.self)))
            }
        case .json:
            if depth > 0 {
                if objectsSeen == 0 && !skippingObject && !sse && !Self.looksLikeJSONObject(object) {
                    // Never a complete object, and not `{"…`: text that happened to start with `{`.
                    events.append(.text(String(decoding: object, as: UTF8.self)))
                } else {
                    events.append(.error("the reply ended inside a JSON object"))
                }
            }
            reportStray(into: &events)
        }
        self = LLMReplyParser()
        return events
    }

    /// `{` then optional whitespace then `"` (or nothing more yet): how a truncated JSON
    /// object starts, and how text rarely does.
    private static func looksLikeJSONObject(_ bytes: [UInt8]) -> Bool {
        guard let next = bytes.dropFirst().first(where: { !isASCIIWhitespace($0) }) else { return true }
        return next == UInt8(ascii: "\"")
    }

    // MARK: - Deciding

    private static let ssePrefix = Array("data:".utf8)
    private static let byteOrderMark: [UInt8] = [0xEF, 0xBB, 0xBF]

    /// Looks at the first non-whitespace bytes: `{` is JSON, `data:` is SSE-framed JSON,
    /// anything else is text. Returns the index to go on from.
    private mutating func decide(_ bytes: UnsafeRawBufferPointer, from start: Int, into events: inout [LLMReplyEvent]) -> Int {
        var index = start
        while index < bytes.count {
            let byte = bytes[index]
            if object.isEmpty {
                if isASCIIWhitespace(byte) {
                    index += 1
                    continue
                }
                if byte == UInt8(ascii: "{") {
                    mode = .json
                    return index
                }
            }
            object.append(byte)
            index += 1
            if !bomSkipped, Self.byteOrderMark.starts(with: object) {
                if object.count == Self.byteOrderMark.count {
                    bomSkipped = true
                    object.removeAll(keepingCapacity: true)
                }
                continue
            }
            let seen = object.count
            if seen <= Self.ssePrefix.count, object[seen - 1] == Self.ssePrefix[seen - 1] {
                if seen == Self.ssePrefix.count {
                    mode = .json
                    sse = true
                    object.removeAll(keepingCapacity: true)
                    return index
                }
                continue
            }
            // Text: what was held, then the rest of this piece.
            mode = .text
            let held = object
            object.removeAll(keepingCapacity: true)
            held.withUnsafeBytes { appendText($0, to: &events) }
            return index
        }
        return index
    }

    private mutating func appendText(_ bytes: UnsafeRawBufferPointer, to events: inout [LLMReplyEvent]) {
        let text = carry.decode(bytes)
        if !text.isEmpty { events.append(.text(text)) }
    }

    // MARK: - JSON objects

    private mutating func scanJSON(_ bytes: UnsafeRawBufferPointer, from start: Int, into events: inout [LLMReplyEvent]) -> Int {
        var index = start
        if depth == 0 {
            // Between objects: skip to the next `{`.
            while index < bytes.count, bytes[index] != UInt8(ascii: "{") {
                let byte = bytes[index]
                if !isASCIIWhitespace(byte), byte != UInt8(ascii: ",") { strayBytes += 1 }
                index += 1
            }
            guard index < bytes.count else { return index }
            reportStray(into: &events)
        }
        let objectStart = index
        while index < bytes.count {
            let byte = bytes[index]
            index += 1
            if inString {
                if escaped {
                    escaped = false
                } else if byte == UInt8(ascii: "\\") {
                    escaped = true
                } else if byte == UInt8(ascii: "\"") {
                    inString = false
                }
                continue
            }
            switch byte {
            case UInt8(ascii: "\""): inString = true
            case UInt8(ascii: "{"): depth += 1
            case UInt8(ascii: "}"):
                depth -= 1
                if depth == 0 {
                    keep(bytes, objectStart..<index)
                    completeObject(into: &events)
                    return index
                }
            default: break
            }
        }
        keep(bytes, objectStart..<index)
        return index
    }

    private mutating func keep(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) {
        guard !skippingObject else { return }
        if object.count + range.count > Self.maximumObjectBytes {
            skippingObject = true
            object.removeAll()
            return
        }
        object.append(contentsOf: bytes[range])
    }

    private mutating func completeObject(into events: inout [LLMReplyEvent]) {
        defer {
            object.removeAll(keepingCapacity: object.capacity <= 4096)
            skippingObject = false
            objectsSeen += 1
        }
        if skippingObject {
            events.append(.error("a JSON object over \(Self.maximumObjectBytes) bytes was skipped"))
            return
        }
        let value: JSONValue
        do {
            value = try JSONValue.parse(object)
        } catch {
            if objectsSeen == 0 && !sse {
                // The first "object" is not JSON: the body is text after all.
                mode = .text
                let held = object
                held.withUnsafeBytes { appendText($0, to: &events) }
                return
            }
            events.append(.error("malformed JSON object in the reply (\(error))"))
            return
        }
        events.append(Self.event(for: value))
    }

    private mutating func reportStray(into events: inout [LLMReplyEvent]) {
        if strayBytes > 0, !sse {
            events.append(.error("\(strayBytes) bytes of non-JSON text between the reply's JSON objects"))
        }
        strayBytes = 0
    }

    /// The event for one complete object.
    static func event(for value: JSONValue) -> LLMReplyEvent {
        guard let object = value.objectValue else { return .ignored(type: "") }
        func text(_ member: JSONValue?) -> String {
            guard let member else { return "" }
            return member.stringValue ?? member.serialized()
        }
        guard let typeValue = object["type"] else {
            // No `type`: an error body, or a bare {"content": …}.
            if let error = object["error"] { return .error(error["message"]?.stringValue ?? text(error)) }
            if let content = object["content"]?.stringValue { return .text(content) }
            if let message = object["message"]?.stringValue { return .error(message) }
            return .ignored(type: "")
        }
        let type = typeValue.stringValue ?? typeValue.serialized()
        switch type {
        case "text":
            guard let content = object["content"]?.stringValue else { return .ignored(type: type) }
            return .text(content)
        case "status": return .status(text(object["content"] ?? object["message"]))
        case "error": return .error(text(object["content"] ?? object["message"] ?? object["error"]))
        default: return .ignored(type: type)
        }
    }
}
