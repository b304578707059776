/// Every webhook event avr-core sends, and the one place their payloads are written
/// (docs/PROTOCOLS.md, "Webhooks"). A new event is a case here: its `type`, whether it is a
/// lifecycle event, and its payload.
package enum WebhookEvent: Sendable, Equatable {
    /// `POST /call` registered a call; the payload is the request's `payload` object as sent.
    /// The answer may choose the call's STS (`{"sts_url":…}`).
    case callInitiated(payload: JSONObject)
    /// The call's AudioSocket connection sent its UUID. Payload `{}`.
    case callStarted
    /// A transcript from the speech service: `{"role":…,"text":…}`.
    case transcription(role: TranscriptRole, text: String)
    /// The speech service (or the pipeline's barge-in) stopped the agent. Payload `{}`.
    case interruption
    /// The caller pressed a key: `{"digit":"5"}`.
    case dtmfDigit(DTMFDigit)
    /// The call is over: why, how long, and its quality figures (`CallEndSummary`).
    case callEnded(CallEndSummary)
    /// The call's STS connection was lost and the call goes on through another endpoint:
    /// `{"from":…,"to":…,"reason":…,"gap_ms":…}` (endpoints without credentials or query values).
    case callFailover(from: String, to: String, reason: String, gapMilliseconds: UInt64)

    /// The envelope's `type`.
    package var type: String {
        switch self {
        case .callInitiated: WebhookEnvelope.callInitiated
        case .callStarted: WebhookEnvelope.callStarted
        case .transcription: WebhookEnvelope.transcription
        case .interruption: WebhookEnvelope.interruption
        case .dtmfDigit: WebhookEnvelope.dtmfDigit
        case .callEnded: WebhookEnvelope.callEnded
        case .callFailover: WebhookEnvelope.callFailover
        }
    }

    /// The envelope's `payload`.
    package var payload: JSONValue {
        switch self {
        case .callInitiated(let payload): .object(payload)
        case .callStarted, .interruption: .object([:])
        case .transcription(let role, let text): ["role": .string(role.label), "text": .string(text)]
        case .dtmfDigit(let digit): ["digit": .string(digit.description)]
        case .callEnded(let summary): summary.webhookPayload
        case .callFailover(let from, let to, let reason, let gap):
            ["from": .string(from), "to": .string(to), "reason": .string(reason), "gap_ms": JSONValue(integer: gap)]
        }
    }

    /// The request body, serialised once per event: every attempt sends (and signs) these bytes.
    package func body(uuid: String, timestampMs: Int64) -> [UInt8] {
        WebhookEnvelope.encode(uuid: uuid, type: type, timestampMs: timestampMs, payload: payload)
    }
}
