import Testing
@testable import AVRProtocol

@Suite struct JSONSerializerTests {
    @Test(arguments: [
        #"{"z":1,"a":2,"m":{"y":[],"b":{}}}"#,
        #"[null,true,false,-0.5E-7,"",{"":""}]"#,
        #""\"\\\n\r\t\b\f\u0001\u001f é😀/""#,
        #"{"from":"2000","to":"5001","uniqueid":"1770758888.32","channel":"PJSIP/2000-00000013"}"#,
    ])
    func compactDocumentsRoundTripByteForByte(text: String) throws {
        let value = try JSONValue.parse(Array(text.utf8))
        #expect(value.serialized() == text)
        #expect(try JSONValue.parse(Array(value.serialized().utf8)) == value)
    }

    @Test func whitespaceIsDroppedAndOrderKept() throws {
        let value = try JSONValue.parse(Array("{ \"b\" : [ 1 , 2 ] ,\n \"a\" : \"\\u0041\" }".utf8))
        #expect(value.serialized() == #"{"b":[1,2],"a":"A"}"#)
    }

    @Test(arguments: [
        ("plain", "plain"),
        ("a\"b", #"a\"b"#),
        ("back\\slash", #"back\\slash"#),
        ("\n\r\t\u{8}\u{C}", #"\n\r\t\b\f"#),
        ("\u{0}\u{1}\u{1F}", #"\u0000\u0001\u001f"#),
        ("é😀 /<>", "é😀 /<>"),
        ("\u{7F}", "\u{7F}"),
    ])
    func escaping(input: String, escaped: String) {
        #expect(JSONValue.escapedString(input) == escaped)
        var bytes: [UInt8] = [0x41]
        JSONValue.appendEscaped(input, to: &bytes)
        #expect(bytes == [0x41] + Array(escaped.utf8))
        var quoted: [UInt8] = []
        JSONValue.appendQuoted(input, to: &quoted)
        #expect(quoted == Array(("\"" + escaped + "\"").utf8))
    }

    @Test func builtValuesSerialize() {
        var object = JSONObject()
        object.append(key: "role", value: "agent")
        object.append(key: "n", value: JSONValue(integer: -42))
        object.append(key: "ok", value: .bool(true))
        object.append(key: "none", value: nil)
        #expect(JSONValue.object(object).serialized() == #"{"role":"agent","n":-42,"ok":true,"none":null}"#)
        #expect(JSONValue.array([]).serialized() == "[]")
        #expect(JSONValue.object([:]).serialized() == "{}")
    }

    @Test func accessors() {
        let value: JSONValue = ["s": "x", "b": false, "a": [1], "n": nil]
        #expect(value["s"]?.stringValue == "x")
        #expect(value["b"]?.boolValue == false)
        #expect(value["a"]?.arrayValue == [1])
        #expect(value["n"]?.isNull == true)
        #expect(value["missing"] == nil)
        #expect(value["b"]?.stringValue == nil)
        #expect(JSONValue.string("x")["s"] == nil)
    }
}
