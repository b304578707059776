/// The rare messages avr-core sends to the STS service (once per call, once per key press).
/// Cold path: built as a small array, then framed.
public enum STSOutboundMessage {
    /// `{"type":"init","uuid":"<uuid>"}`, the first message of a call.
    public static func initJSON(uuid: String) -> [UInt8] {
        var json = Array(#"{"type":"init","uuid":"#.utf8)
        appendJSONString(uuid, to: &json)
        json.append(UInt8(ascii: "}"))
        return json
    }

    /// `{"type":"dtmf_digit","digit":"5"}`.
    public static func dtmfDigitJSON(_ digit: String) -> [UInt8] {
        var json = Array(#"{"type":"dtmf_digit","digit":"#.utf8)
        appendJSONString(digit, to: &json)
        json.append(UInt8(ascii: "}"))
        return json
    }

    public static func appendInitFrame(uuid: String, maskingKey: WebSocketMaskingKey, to output: inout [UInt8]) {
        initJSON(uuid: uuid).withUnsafeBytes {
            WebSocketFrameEncoder.appendFrame(opcode: .text, payload: $0, maskingKey: maskingKey, to: &output)
        }
    }

    public static func appendDTMFDigitFrame(_ digit: String, maskingKey: WebSocketMaskingKey, to output: inout [UInt8]) {
        dtmfDigitJSON(digit).withUnsafeBytes {
            WebSocketFrameEncoder.appendFrame(opcode: .text, payload: $0, maskingKey: maskingKey, to: &output)
        }
    }

    /// Appends `value` as a JSON string literal, quotes included (RFC 8259 §7 escaping), so a
    /// surprising digit byte from the PBX cannot break the JSON.
    static func appendJSONString(_ value: String, to output: inout [UInt8]) {
        let hex = Array("0123456789abcdef".utf8)
        output.append(UInt8(ascii: "\""))
        for byte in value.utf8 {
            switch byte {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"):
                output.append(UInt8(ascii: "\\"))
                output.append(byte)
            case 0x0A: output.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
            case 0x0D: output.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
            case 0x09: output.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
            case 0..<0x20:
                output.append(contentsOf: Array(#"\u00"#.utf8))
                output.append(hex[Int(byte >> 4)])
                output.append(hex[Int(byte & 0x0F)])
            default:
                output.append(byte)
            }
        }
        output.append(UInt8(ascii: "\""))
    }
}
