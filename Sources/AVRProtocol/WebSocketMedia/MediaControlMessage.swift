/// How Asterisk's WebSocket channel writes its control messages: `plain-text` (the default;
/// `MEDIA_START connection_id:avr channel:WebSocket/avr/0x… format:ulaw …`) or `json`
/// (`{"event":"MEDIA_START",…}`), chosen by the dial string's `f(json)` option or
/// `control_message_format` in chan_websocket.conf. Our commands are written in the format
/// its `MEDIA_START` came in, since that is the one the channel parses.
package enum MediaControlFormat: Equatable, Sendable {
    case plainText
    case json
}

/// The `MEDIA_START` event: the first text message on every connection, before any media.
package struct MediaStart: Equatable, Sendable {
    /// The websocket_client.conf connection name.
    package var connectionID: String?
    /// The channel's name (`WebSocket/avr/0x7f…`).
    package var channel: String?
    /// The channel's unique id.
    package var channelID: String?
    /// The native format's name (`ulaw`, `slin16`, ...).
    package var format: String
    /// The frame size, in bytes, the channel cuts our media into.
    package var optimalFrameSize: Int?
    package var ptime: Int?
    /// The channel's variables (JSON format only), names as Asterisk lists them.
    package var channelVariables: [MediaVariable] = []
    package var controlFormat: MediaControlFormat

    /// The call's UUID as the channel carries it: the `AVR_UUID` channel variable (inherited
    /// from the dialling channel as `__AVR_UUID`, any leading underscores ignored), else the
    /// channel id when it is a UUID. Nil when neither is (the URI's `uuid=` comes first; see
    /// the media endpoint).
    package var callUUID: CallUUID? {
        for variable in channelVariables.reversed() where variable.name.drop(while: { $0 == "_" }) == "AVR_UUID" {
            if let uuid = CallUUID(string: variable.value) { return uuid }
        }
        return channelID.flatMap { CallUUID(string: $0) }
    }
}

package struct MediaVariable: Equatable, Sendable {
    package var name: String
    package var value: String

    package init(name: String, value: String) {
        self.name = name
        self.value = value
    }
}

/// One control message from Asterisk's WebSocket channel (a text frame).
package enum MediaControlEvent: Equatable, Sendable {
    case mediaStart(MediaStart)
    /// Its queue of our media passed the high-water mark (900 frames): stop sending.
    case mediaXOFF
    /// The queue fell below the low-water mark (800 frames): send again.
    case mediaXON
    /// The queue emptied after `REPORT_QUEUE_DRAINED`.
    case queueDrained
    /// The answer to `GET_STATUS`.
    case status(queueLength: Int?)
    /// A DTMF key was released (the byte as sent; the caller checks it is a DTMF key).
    case dtmfEnd(digit: UInt8)
    case mediaBufferingCompleted(correlationID: String)
    case mediaMarkProcessed(correlationID: String)
    /// The channel refused a command.
    case error(text: String)
    /// An event this version does not know; ignored.
    case other(name: String)
}

/// Why a control message could not be read. The message is ignored; the call goes on.
package enum MediaControlError: Error, Equatable, Sendable, CustomStringConvertible {
    case empty
    case tooLong(Int)
    case invalidJSON(String)
    case noEventName
    case invalidEventName(String)
    case missingField(event: String, field: String)
    case invalidField(event: String, field: String, value: String)

    package var description: String {
        switch self {
        case .empty: "empty control message"
        case .tooLong(let count): "control message of \(count) bytes (at most \(MediaControlParser.maxLength))"
        case .invalidJSON(let reason): "control message is not valid JSON: \(reason)"
        case .noEventName: "control message names no event"
        case .invalidEventName(let name): "control message event name is not an upper-case word: \(name.debugDescription)"
        case .missingField(let event, let field): "\(event) without \(field)"
        case .invalidField(let event, let field, let value): "\(event) with an invalid \(field): \(value.debugDescription)"
        }
    }
}

/// Reads the channel's control messages in either format. Pure; never traps on any input.
/// Control messages are rare (one `MEDIA_START` per call, a few events), so JSON goes through
/// the general parser; the media frames never come here.
package enum MediaControlParser {
    /// Longer messages are refused (a `MEDIA_START` with many channel variables stays far below).
    package static let maxLength = 64 * 1024

    package static func parse(_ bytes: UnsafeRawBufferPointer) throws(MediaControlError) -> MediaControlEvent {
        guard bytes.count <= maxLength else { throw .tooLong(bytes.count) }
        var start = 0
        var end = bytes.count
        while start < end, isSpace(bytes[start]) { start += 1 }
        while end > start, isSpace(bytes[end - 1]) { end -= 1 }
        guard start < end else { throw .empty }
        let text = UnsafeRawBufferPointer(rebasing: bytes[start..<end])
        return text[0] == UInt8(ascii: "{") ? try parseJSON(text) : try parsePlain(String(decoding: text, as: UTF8.self))
    }

    package static func parse(_ bytes: [UInt8]) throws(MediaControlError) -> MediaControlEvent {
        let result = bytes.withUnsafeBytes { raw in
            Result { () throws(MediaControlError) in try parse(raw) }
        }
        return try result.get()
    }

    private static func isSpace(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D
    }

    private static func validName(_ name: some StringProtocol) -> Bool {
        !name.isEmpty && name.utf8.count <= 64
            && name.utf8.allSatisfy { ($0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z")) || $0 == UInt8(ascii: "_") }
    }

    // MARK: plain-text: `NAME key:value key:value …`

    private static func parsePlain(_ text: String) throws(MediaControlError) -> MediaControlEvent {
        let words = text.split(separator: " ", omittingEmptySubsequences: true)
        let name = String(words[0])
        guard validName(name) else { throw .invalidEventName(String(name.prefix(64))) }
        let rest = text.dropFirst(name.count).drop { $0 == " " }
        // `key:value` pairs; a word without a colon continues the previous value (a value
        // with spaces, such as ERROR's error_text). `error_text` takes the rest of the line.
        var fields: [(String, String)] = []
        var remaining = Substring(rest)
        while !remaining.isEmpty {
            let word = remaining.prefix { $0 != " " }
            remaining = remaining.dropFirst(word.count).drop { $0 == " " }
            if let colon = word.firstIndex(of: ":"), colon != word.startIndex {
                let key = String(word[..<colon])
                if key == "error_text" {
                    let value = String(word[word.index(after: colon)...]) + (remaining.isEmpty ? "" : " " + remaining)
                    fields.append((key, value))
                    break
                }
                fields.append((key, String(word[word.index(after: colon)...])))
            } else if fields.isEmpty {
                fields.append(("", String(word)))
            } else {
                fields[fields.count - 1].1 += " " + word
            }
        }
        func field(_ key: String) -> String? { fields.last { $0.0 == key }?.1 }
        switch name {
        case "MEDIA_START":
            guard let format = field("format"), !format.isEmpty else { throw .missingField(event: name, field: "format") }
            return .mediaStart(MediaStart(connectionID: field("connection_id"), channel: field("channel"),
                                          channelID: field("channel_id"), format: format,
                                          optimalFrameSize: try integer(field("optimal_frame_size"), name, "optimal_frame_size"),
                                          ptime: try integer(field("ptime"), name, "ptime"), controlFormat: .plainText))
        case "DTMF_END":
            return .dtmfEnd(digit: try digit(field("digit"), name))
        case "STATUS":
            return .status(queueLength: try integer(field("queue_length"), name, "queue_length"))
        case "MEDIA_BUFFERING_COMPLETED":
            return .mediaBufferingCompleted(correlationID: String(rest))
        case "MEDIA_MARK_PROCESSED":
            return .mediaMarkProcessed(correlationID: String(rest))
        case "ERROR":
            return .error(text: field("error_text") ?? String(rest))
        default:
            return simple(name)
        }
    }

    private static func simple(_ name: String) -> MediaControlEvent {
        switch name {
        case "MEDIA_XOFF": .mediaXOFF
        case "MEDIA_XON": .mediaXON
        case "QUEUE_DRAINED": .queueDrained
        default: .other(name: name)
        }
    }

    private static func integer(_ value: String?, _ event: String, _ field: String) throws(MediaControlError) -> Int? {
        guard let value else { return nil }
        guard let number = Int(value), number >= 0, number <= 1 << 30 else {
            throw .invalidField(event: event, field: field, value: String(value.prefix(64)))
        }
        return number
    }

    private static func digit(_ value: String?, _ event: String) throws(MediaControlError) -> UInt8 {
        guard let value else { throw .missingField(event: event, field: "digit") }
        guard value.utf8.count == 1, let byte = value.utf8.first else {
            throw .invalidField(event: event, field: "digit", value: String(value.prefix(64)))
        }
        return byte
    }

    // MARK: json: `{"event":"NAME",…}`

    private static func parseJSON(_ bytes: UnsafeRawBufferPointer) throws(MediaControlError) -> MediaControlEvent {
        let value: JSONValue
        switch JSONParser.parse(bytes) {
        case .success(let parsed): value = parsed
        case .failure(let error): throw .invalidJSON(error.description)
        }
        guard let object = value.objectValue else { throw .invalidJSON("not an object") }
        guard let name = object["event"]?.stringValue else { throw .noEventName }
        guard validName(name) else { throw .invalidEventName(String(name.prefix(64))) }
        func string(_ key: String) -> String? { object[key]?.stringValue }
        func number(_ key: String) throws(MediaControlError) -> Int? {
            guard let field = object[key] else { return nil }
            guard case .number(let text) = field else {
                throw .invalidField(event: name, field: key, value: "\(field)".prefix(64).description)
            }
            return try integer(text, name, key)
        }
        switch name {
        case "MEDIA_START":
            guard let format = string("format"), !format.isEmpty else { throw .missingField(event: name, field: "format") }
            var variables: [MediaVariable] = []
            if let members = object["channel_variables"]?.objectValue {
                for member in members {
                    if let text = member.value.stringValue { variables.append(MediaVariable(name: member.key, value: text)) }
                }
            }
            return .mediaStart(MediaStart(connectionID: string("connection_id"), channel: string("channel"),
                                          channelID: string("channel_id"), format: format,
                                          optimalFrameSize: try number("optimal_frame_size"), ptime: try number("ptime"),
                                          channelVariables: variables, controlFormat: .json))
        case "DTMF_END":
            return .dtmfEnd(digit: try digit(string("digit"), name))
        case "STATUS":
            return .status(queueLength: try number("queue_length"))
        case "MEDIA_BUFFERING_COMPLETED":
            return .mediaBufferingCompleted(correlationID: string("correlation_id") ?? "")
        case "MEDIA_MARK_PROCESSED":
            return .mediaMarkProcessed(correlationID: string("correlation_id") ?? "")
        case "ERROR":
            return .error(text: string("error_text") ?? "")
        default:
            return simple(name)
        }
    }
}

/// The commands we send the channel, as text frames in its control format.
package enum MediaCommand: String, Sendable, CaseIterable {
    /// Answers the channel (needed only with the dial string's `n` option: no auto-answer).
    case answer = "ANSWER"
    case hangup = "HANGUP"
    /// Drops every frame of ours the channel has queued (the agent was interrupted).
    case flushMedia = "FLUSH_MEDIA"
    case getStatus = "GET_STATUS"
    case reportQueueDrained = "REPORT_QUEUE_DRAINED"

    /// The message's bytes: `HANGUP` or `{"command":"HANGUP"}`.
    package func encoded(_ format: MediaControlFormat) -> [UInt8] {
        switch format {
        case .plainText: Array(rawValue.utf8)
        case .json: Array(#"{"command":"\#(rawValue)"}"#.utf8)
        }
    }
}
