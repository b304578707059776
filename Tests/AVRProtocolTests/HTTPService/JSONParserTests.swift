import Testing
@testable import AVRProtocol

private func parse(_ text: String) throws(JSONError) -> JSONValue {
    try JSONValue.parse(Array(text.utf8))
}

private func parseError(_ bytes: [UInt8]) -> JSONError? {
    do {
        _ = try JSONValue.parse(bytes)
        return nil
    } catch {
        return error
    }
}

private func parseError(_ text: String) -> JSONError? { parseError(Array(text.utf8)) }

@Suite struct JSONParserTests {
    @Test func seedCallBodyKeepsOrderAndText() throws {
        let body = #"{"uuid":"935652e3-7c59-4edc-b17f-9646a9c2a265","payload":{"from":"2000","to":"5001","uniqueid":"1770758888.32","channel":"PJSIP/2000-00000013"}}"#
        let value = try parse(body)
        #expect(value["uuid"]?.stringValue == "935652e3-7c59-4edc-b17f-9646a9c2a265")
        let payload = try #require(value["payload"]?.objectValue)
        #expect(payload.map(\.key) == ["from", "to", "uniqueid", "channel"])
        #expect(payload["channel"] == .string("PJSIP/2000-00000013"))
        #expect(value.serialized() == body)
    }

    @Test(arguments: [
        ("true", JSONValue.bool(true)),
        ("false", .bool(false)),
        ("null", .null),
        ("0", .number("0")),
        ("-0", .number("-0")),
        ("-0.0e-0", .number("-0.0e-0")),
        ("1E+2", .number("1E+2")),
        ("12.50", .number("12.50")),
        ("123456789012345678901234567890", .number("123456789012345678901234567890")),
        ("\"\"", .string("")),
        ("[]", .array([])),
        ("{}", .object(JSONObject())),
        (" \t\r\n[ 1 , \"a\" , { } ] \n", .array([.number("1"), .string("a"), .object(JSONObject())])),
        (#"{"a":{"b":[true,null]}}"#, JSONValue.object(["a": .object(["b": .array([true, nil])])])),
    ])
    func validDocuments(text: String, expected: JSONValue) throws {
        #expect(try parse(text) == expected)
    }

    @Test(arguments: [
        (#""\"\\\/\b\f\n\r\t""#, "\"\\/\u{8}\u{C}\n\r\t"),
        (#""\u00e9\u00E9""#, "éé"),
        (#""\uD83D\uDE00""#, "😀"),
        (#""\ud83d\ude00x""#, "😀x"),
        (#""\u0000""#, "\u{0}"),
        (#""\u20AC""#, "€"),
        ("\"é😀€\"", "é😀€"),
        (#""ab\u0041é\n""#, "abAé\n"),
        ("\"\u{7F}\"", "\u{7F}"),
    ])
    func stringEscapes(text: String, expected: String) throws {
        #expect(try parse(text) == .string(expected))
    }

    @Test func duplicateKeysAreKeptAndLookupTakesTheLast() throws {
        let value = try parse(#"{"a":1,"b":2,"a":3}"#)
        #expect(value.objectValue?.count == 3)
        #expect(value["a"] == .number("3"))
        #expect(value.serialized() == #"{"a":1,"b":2,"a":3}"#)
    }

    @Test(arguments: [
        ("", JSONError.Reason.unexpectedEndOfInput, 0),
        ("   ", .unexpectedEndOfInput, 3),
        ("[", .unexpectedEndOfInput, 1),
        ("{", .unexpectedEndOfInput, 1),
        (#"{"a""#, .unexpectedEndOfInput, 4),
        (#"{"a":"#, .unexpectedEndOfInput, 5),
        (#""abc"#, .unexpectedEndOfInput, 4),
        (#""\"#, .unexpectedEndOfInput, 2),
        ("tru", .unexpectedEndOfInput, 3),
        ("-", .unexpectedEndOfInput, 1),
        ("1.", .unexpectedEndOfInput, 2),
        ("1e", .unexpectedEndOfInput, 2),
        ("1e+", .unexpectedEndOfInput, 3),
        (#"{"a" 1}"#, .expectedColon, 5),
        (#"{"uuid":"x","pay"1}"#, .expectedColon, 17),
        (#"{"a":1,}"#, .expectedKey, 7),
        ("{a:1}", .expectedKey, 1),
        ("{1:1}", .expectedKey, 1),
        ("[1,]", .expectedValue, 3),
        ("[,1]", .expectedValue, 1),
        ("[1 2]", .expectedCommaOrArrayEnd, 3),
        (#"{"a":1 "b":2}"#, .expectedCommaOrObjectEnd, 7),
        (#"{"a":1]"#, .expectedCommaOrObjectEnd, 6),
        ("[1}", .expectedCommaOrArrayEnd, 2),
        ("trux", .invalidLiteral, 0),
        ("nul1", .invalidLiteral, 0),
        ("True", .expectedValue, 0),
        ("+1", .expectedValue, 0),
        (".5", .expectedValue, 0),
        ("'a'", .expectedValue, 0),
        ("NaN", .expectedValue, 0),
        ("\u{C}1", .expectedValue, 0),
        ("01", .leadingZero, 0),
        ("-01", .leadingZero, 1),
        ("[00]", .leadingZero, 1),
        ("-a", .invalidNumber, 1),
        ("1.e5", .invalidNumber, 2),
        ("1ea", .invalidNumber, 2),
        ("1 2", .trailingData, 2),
        (#"{"a":1}x"#, .trailingData, 7),
        ("{} {}", .trailingData, 3),
        ("[]]", .trailingData, 2),
        (#""\x""#, .invalidEscape, 1),
        (#""\U0041""#, .invalidEscape, 1),
        (#""\'""#, .invalidEscape, 1),
        (#""\u12""#, .invalidUnicodeEscape, 5),
        (#""\u12G4""#, .invalidUnicodeEscape, 5),
        (#""\uD800""#, .loneSurrogate, 1),
        (#""\uDC00""#, .loneSurrogate, 1),
        (#""\uDBFFx""#, .loneSurrogate, 1),
        (#""\uD800\n""#, .loneSurrogate, 1),
        (#""\uD800\u0041""#, .loneSurrogate, 7),
        (#""\uD800\uD800""#, .loneSurrogate, 7),
        ("\"a\nb\"", .controlCharacterInString, 2),
        ("\"\t\"", .controlCharacterInString, 1),
        ("\"é\u{1}\"", .controlCharacterInString, 3),
    ])
    func invalidDocuments(text: String, reason: JSONError.Reason, offset: Int) {
        #expect(parseError(text) == JSONError(reason, at: offset))
    }

    @Test(arguments: [
        [0x22, 0xC3, 0x22],  // lead byte without continuation
        [0x22, 0x80, 0x22],  // lone continuation byte
        [0x22, 0xC0, 0xAF, 0x22],  // overlong "/"
        [0x22, 0xC1, 0xBF, 0x22],  // overlong
        [0x22, 0xE0, 0x80, 0xAF, 0x22],  // overlong 3-byte
        [0x22, 0xED, 0xA0, 0x80, 0x22],  // UTF-8 encoded surrogate U+D800
        [0x22, 0xF0, 0x80, 0x80, 0xAF, 0x22],  // overlong 4-byte
        [0x22, 0xF4, 0x90, 0x80, 0x80, 0x22],  // above U+10FFFF
        [0x22, 0xF5, 0x80, 0x80, 0x80, 0x22],
        [0x22, 0xFF, 0x22],
        [0x22, 0xE2, 0x82, 0x22],  // truncated €
        [0x22, 0xF0, 0x9F, 0x98],  // truncated emoji at end of input
    ] as [[UInt8]])
    func invalidUTF8InStrings(bytes: [UInt8]) {
        #expect(parseError(bytes) == JSONError(.invalidUTF8, at: 1))
    }

    @Test func validUTF8Boundaries() throws {
        // U+0080, U+07FF, U+0800, U+FFFF, U+10000, U+10FFFF, U+E000 (just after the surrogates)
        let bytes: [UInt8] = [0x22, 0xC2, 0x80, 0xDF, 0xBF, 0xE0, 0xA0, 0x80, 0xEF, 0xBF, 0xBF,
                              0xF0, 0x90, 0x80, 0x80, 0xF4, 0x8F, 0xBF, 0xBF, 0xEE, 0x80, 0x80, 0x22]
        let value = try JSONValue.parse(bytes)
        #expect(value == .string("\u{80}\u{7FF}\u{800}\u{FFFF}\u{10000}\u{10FFFF}\u{E000}"))
    }

    @Test func byteOrderMarkAndNonASCIIOutsideStringsAreRejected() {
        #expect(parseError([0xEF, 0xBB, 0xBF, 0x7B, 0x7D]) == JSONError(.expectedValue, at: 0))
        #expect(parseError([0x5B, 0xC3, 0xA9, 0x5D]) == JSONError(.expectedValue, at: 1))
    }

    @Test func nestingUpToTheLimitIsAccepted() throws {
        let depth = JSONParser.maximumDepth
        let text = String(repeating: "[", count: depth) + String(repeating: "]", count: depth)
        var value = try parse(text)
        for _ in 1..<depth { value = try #require(value.arrayValue?.first) }
        #expect(value == .array([]))
    }

    @Test func nestingBeyondTheLimitIsRefused() {
        let depth = JSONParser.maximumDepth + 1
        let arrays = String(repeating: "[", count: depth) + String(repeating: "]", count: depth)
        #expect(parseError(arrays) == JSONError(.tooDeeplyNested, at: 64))
        let objects = String(repeating: #"{"a":"#, count: depth) + "1" + String(repeating: "}", count: depth)
        #expect(parseError(objects) == JSONError(.tooDeeplyNested, at: 64 * 5))
    }

    @Test func depthBombDoesNotExhaustTheStack() {
        let bomb = [UInt8](repeating: UInt8(ascii: "["), count: 1_000_000)
        #expect(parseError(bomb) == JSONError(.tooDeeplyNested, at: 64))
    }

    @Test func everyProperPrefixOfAValidDocumentIsRefused() {
        let document = Array(#"{"a":[1,-2.5e3,"x\u00e9\n",true,false,null,{}],"b":"é"}"#.utf8)
        #expect(parseError(document) == nil)
        for length in 0..<document.count {
            let prefix = Array(document[..<length])
            #expect(parseError(prefix) != nil, "prefix of length \(length) parsed")
        }
    }

    @Test func parsesFromNonContiguousCollectionsAndRawBuffers() throws {
        let reversed = Array(#"]"b",1["#.utf8).reversed()  // ReversedCollection: no contiguous storage
        #expect(try JSONValue.parse(reversed) == [1, "b"])
        let bytes = Array(#"{"k":"v"}"#.utf8)
        let value = try bytes.withUnsafeBytes { buffer throws(JSONError) in try JSONValue.parse(buffer) }
        #expect(value == ["k": "v"])
        #expect(try JSONValue.parse(bytes[1...3]) == "k")  // an ArraySlice not starting at 0
        var buffer = ByteBuffer(bytes: Array("xx[1,".utf8))
        buffer.moveReaderIndex(forwardBy: 2)
        #expect(throws: JSONError(.unexpectedEndOfInput, at: 3)) { try JSONValue.parse(buffer) }
        buffer.append(contentsOf: Array("2]".utf8))
        #expect(try JSONValue.parse(buffer) == [1, 2])
    }

    @Test func errorDescriptionNamesOffsetAndReason() {
        let error = parseError(#"{"uuid":"x","pay"1}"#)
        #expect(error?.description == "invalid JSON at byte 17: expected ':'")
        #expect(parseError("[1,2")?.description == "invalid JSON at byte 4: unexpected end of input")
    }
}
