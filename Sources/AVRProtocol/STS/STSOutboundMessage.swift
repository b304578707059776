/// The rare messages avr-core sends to the STS service (once per call, once per key press).
/// Cold path: built as a small array, then framed.
package enum STSOutboundMessage {
    /// `{"type":"init","uuid":"<uuid>"}`, the first message of a call.
    package static func initJSON(uuid: String) -> [UInt8] {
        var json = Array(#"{"type":"init","uuid":"#.utf8)
        JSONValue.appendQuoted(uuid, to: &json)
        json.append(UInt8(ascii: "}"))
        return json
    }

    /// `{"type":"dtmf_digit","digit":"5"}`.
    package static func dtmfDigitJSON(_ digit: String) -> [UInt8] {
        var json = Array(#"{"type":"dtmf_digit","digit":"#.utf8)
        JSONValue.appendQuoted(digit, to: &json)
        json.append(UInt8(ascii: "}"))
        return json
    }

    package static func appendInitFrame(uuid: String, maskingKey: WebSocketMaskingKey, to output: inout [UInt8]) {
        initJSON(uuid: uuid).withUnsafeBytes {
            WebSocketFrameEncoder.appendFrame(opcode: .text, payload: $0, maskingKey: maskingKey, to: &output)
        }
    }

    package static func appendDTMFDigitFrame(_ digit: String, maskingKey: WebSocketMaskingKey, to output: inout [UInt8]) {
        dtmfDigitJSON(digit).withUnsafeBytes {
            WebSocketFrameEncoder.appendFrame(opcode: .text, payload: $0, maskingKey: maskingKey, to: &output)
        }
    }
}
