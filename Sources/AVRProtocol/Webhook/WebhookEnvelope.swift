/// The body of every webhook POST:
/// `{"uuid":"<call uuid>","type":"<event>","timestamp":"<ISO 8601>","payload":{...}}`,
/// keys in that order, as the AVR webhook receivers expect.
package enum WebhookEnvelope {
    /// Event names from the spec (section 6).
    package static let callInitiated = "call_initiated"
    package static let callStarted = "call_started"
    package static let transcription = "transcription"
    package static let interruption = "interruption"
    package static let dtmfDigit = "dtmf_digit"
    package static let callEnded = "call_ended"
    /// A call's STS connection was lost and replaced by one to another endpoint.
    package static let callFailover = "call_failover"

    /// Whether `type` is one of a call's lifecycle events, which the dispatcher reserves room
    /// for; the others (`transcription`, `interruption`, `dtmf_digit`) come once per message
    /// and are rate-limited per call.
    package static func isLifecycle(_ type: String) -> Bool {
        type == callInitiated || type == callStarted || type == callEnded
    }

    /// The envelope's JSON bytes; `payload` is written as given (an object for every event).
    package static func encode(uuid: String, type: String, timestampMs: Int64, payload: JSONValue) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(96)
        bytes.append(contentsOf: #"{"uuid":"#.utf8)
        JSONValue.appendQuoted(uuid, to: &bytes)
        bytes.append(contentsOf: #","type":"#.utf8)
        JSONValue.appendQuoted(type, to: &bytes)
        bytes.append(contentsOf: #","timestamp":""#.utf8)
        ISO8601Timestamp.append(unixMilliseconds: timestampMs, to: &bytes)
        bytes.append(contentsOf: #"","payload":"#.utf8)
        payload.serialize(into: &bytes)
        bytes.append(UInt8(ascii: "}"))
        return bytes
    }
}
