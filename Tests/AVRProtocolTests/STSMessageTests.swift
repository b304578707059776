import Testing
@testable import AVRProtocol

@Suite struct STSAudioMessageEncoderTests {
    /// Splits a masked client frame into header fields and the unmasked payload.
    private func openFrame(_ frame: [UInt8]) -> (first: UInt8, key: WebSocketMaskingKey, payload: [UInt8])? {
        guard frame.count >= 6, frame[1] & 0x80 != 0 else { return nil }
        var index = 2
        var length = Int(frame[1] & 0x7F)
        if length == 126 {
            length = Int(frame[2]) << 8 | Int(frame[3]); index = 4
        } else if length == 127 {
            length = frame[2..<10].reduce(0) { $0 << 8 | Int($1) }; index = 10
        }
        let key = WebSocketMaskingKey(frame[index], frame[index + 1], frame[index + 2], frame[index + 3])
        index += 4
        guard frame.count == index + length else { return nil }
        return (frame[0], key, frame[index...].enumerated().map { $0.element ^ key[$0.offset] })
    }

    @Test func twentyMillisecondFrame() throws {
        var generator = SplitMix64(seed: 5)
        let pcm = [UInt8].random(count: 320, using: &generator)
        let key = WebSocketMaskingKey(0x37, 0xFA, 0x21, 0x3D)
        var output: [UInt8] = []
        pcm.withUnsafeBytes { STSAudioMessageEncoder.appendFrame(pcm: $0, maskingKey: key, to: &output) }

        let expectedJSON = #"{"type":"audio","audio":""# + Base64.encodeToString(pcm) + #""}"#
        #expect(output.count == 4 + 4 + expectedJSON.utf8.count)
        #expect(output.count == STSAudioMessageEncoder.frameLength(pcmByteCount: 320))
        #expect(Array(output.prefix(8)) == [0x81, 0xFE, 0x01, 0xC7, 0x37, 0xFA, 0x21, 0x3D], "455-byte text frame, masked")
        let frame = try #require(openFrame(output))
        #expect(String(decoding: frame.payload, as: UTF8.self) == expectedJSON)
    }

    @Test func everyLengthAndKeyRoundTrips() throws {
        var generator = SplitMix64(seed: 6)
        for count in Array(0...12) + [276, 298, 320, 640, 48_000, 70_000] {
            let pcm = [UInt8].random(count: count, using: &generator)
            let key = WebSocketMaskingKey(
                UInt8.random(in: 0...255, using: &generator), UInt8.random(in: 0...255, using: &generator),
                UInt8.random(in: 0...255, using: &generator), UInt8.random(in: 0...255, using: &generator))
            var output: [UInt8] = [0x42]
            pcm.withUnsafeBytes { STSAudioMessageEncoder.appendFrame(pcm: $0, maskingKey: key, to: &output) }
            #expect(output.first == 0x42)
            let frame = try #require(openFrame(Array(output.dropFirst())), "\(count)")
            #expect(frame.first == 0x81)
            #expect(frame.key == key)
            let json = #"{"type":"audio","audio":""# + Base64.encodeToString(pcm) + #""}"#
            #expect(frame.payload == Array(json.utf8), "\(count)")
            #expect(frame.payload.count == STSAudioMessageEncoder.payloadLength(pcmByteCount: count))

            // And back through the inbound fast path to samples.
            let parsed = frame.payload.withUnsafeBytes { STSInboundMessage.parse($0) }
            guard case .audio(let range) = parsed else {
                Issue.record("\(count): \(parsed)")
                continue
            }
            var bytes: [UInt8] = []
            try frame.payload.withUnsafeBytes {
                try Base64.decode(UnsafeRawBufferPointer(rebasing: $0[range]), appendingTo: &bytes)
            }
            #expect(bytes == Array(pcm.prefix(count)))
        }
    }

    @Test func initAndDTMFMessages() throws {
        #expect(String(decoding: STSOutboundMessage.initJSON(uuid: "935652e3-7c59-4edc-b17f-9646a9c2a265"), as: UTF8.self)
            == #"{"type":"init","uuid":"935652e3-7c59-4edc-b17f-9646a9c2a265"}"#)
        #expect(String(decoding: STSOutboundMessage.dtmfDigitJSON("5"), as: UTF8.self) == #"{"type":"dtmf_digit","digit":"5"}"#)
        #expect(String(decoding: STSOutboundMessage.dtmfDigitJSON("\""), as: UTF8.self) == #"{"type":"dtmf_digit","digit":"\""}"#)
        #expect(String(decoding: STSOutboundMessage.dtmfDigitJSON("\u{1}"), as: UTF8.self) == #"{"type":"dtmf_digit","digit":"\u0001"}"#)

        var output: [UInt8] = []
        let key = WebSocketMaskingKey(1, 2, 3, 4)
        STSOutboundMessage.appendDTMFDigitFrame("#", maskingKey: key, to: &output)
        let frame = try #require(openFrame(output))
        #expect(frame.first == 0x81)
        #expect(String(decoding: frame.payload, as: UTF8.self) == ##"{"type":"dtmf_digit","digit":"#"}"##)
        output.removeAll()
        STSOutboundMessage.appendInitFrame(uuid: "u", maskingKey: key, to: &output)
        #expect(try String(decoding: #require(openFrame(output)).payload, as: UTF8.self) == #"{"type":"init","uuid":"u"}"#)
    }
}

@Suite struct STSInboundMessageTests {
    private func parse(_ text: String) -> STSInboundMessage {
        Array(text.utf8).withUnsafeBytes { STSInboundMessage.parse($0) }
    }

    /// The base64 text an `.audio` result points at.
    private func audio(_ text: String) -> String? {
        guard case .audio(let range) = parse(text) else { return nil }
        return String(decoding: Array(text.utf8)[range], as: UTF8.self)
    }

    @Test func recognisesAudio() {
        #expect(audio(#"{"type":"audio","audio":"AAEC"}"#) == "AAEC")
        #expect(audio(#"{"audio":"AAEC","type":"audio"}"#) == "AAEC")
        #expect(audio(" {\n\t\"type\" : \"audio\" ,\r\n \"audio\" :\"AAECAwQFBgcICQoL\" } \n") == "AAECAwQFBgcICQoL")
        #expect(audio(#"{"type":"audio","audio":""}"#) == "")
        #expect(parse(#"{"type":"audio","audio":"AAEC"}"#) == .audio(base64: 25..<29))
        let long = String(repeating: "QUJD", count: 200)
        #expect(audio(#"{"type":"audio","audio":"\#(long)"}"#) == long)
    }

    @Test func recognisesInterruption() {
        #expect(parse(#"{"type":"interruption"}"#) == .interruption)
        #expect(parse(#" { "type" : "interruption" } "#) == .interruption)
    }

    @Test func fallsBackOnAnythingElse() {
        let general = [
            #"{"type":"transcript","role":"user","text":"hi"}"#,
            #"{"type":"error","message":"boom"}"#,
            #"{"type":"audio"}"#,
            #"{"audio":"AAEC"}"#,
            #"{"type":"audio","audio":"AAEC","extra":1}"#,
            #"{"type":"audio","audio":"AAEC","seq":"1"}"#,
            #"{"type":"audio","audio":"AA\/EC"}"#,
            #"{"type":"au\u0064io","audio":"AAEC"}"#,
            #"{"type":"audio","audio":"AAEC","type":"audio"}"#,
            #"{"type":"audio","audio":"AAEC","audio":"AAEC"}"#,
            #"{"type":"interruption","audio":"AAEC"}"#,
            #"{"type":"audio","audio":null}"#,
            #"{"type":"audio","audio":["AAEC"]}"#,
            #"{"type":"audio","audio":"AAEC"}x"#,
            #"{"type":"audio","audio":"AAEC""#,
            #"{"type":"audio","audio":"AAEC}"#,
            #"{"type":"audio" "audio":"AAEC"}"#,
            #"{"type":"audio",,"audio":"AAEC"}"#,
            #"{"type":"audio","audio":"AAEC",}"#,
            #"["type","audio"]"#,
            #"{}"#,
            "",
            "{\"type\":\"audio\",\"audio\":\"AA\nEC\"}",
        ]
        for text in general {
            #expect(parse(text) == .needsGeneralParse, "\(text)")
        }
    }

    @Test func escapesAndControlBytesAnywhereInALongStringFallBack() {
        let base = Array(String(repeating: "QUJD", count: 8).utf8)
        for position in 0...base.count {
            for special in ["\\/", "\\\"", "\u{1}", "\\u0041"] {
                var text = base
                text.insert(contentsOf: Array(special.utf8), at: position)
                let json = #"{"type":"audio","audio":""# + String(decoding: text, as: UTF8.self) + #""}"#
                #expect(parse(json) == .needsGeneralParse, "\(special) at \(position)")
            }
        }
    }
}
