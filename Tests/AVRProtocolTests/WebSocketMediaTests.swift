import Testing
@testable import AVRProtocol

/// The server role of the WebSocket code (the `/media` endpoint) and the control messages of
/// Asterisk's WebSocket channel, in both control formats, byte for byte as its source writes them.
@Suite struct WebSocketServerRoleTests {
    /// RFC 6455 §5.7: a masked "Hello" from a client.
    static let maskedHello = [UInt8](hex: "81 85 37 fa 21 3d 7f 9f 4d 51 58")

    static func read(_ chunks: [[UInt8]], role: WebSocketRole = .server) -> ([(WebSocketFrame, [UInt8])], WebSocketError?) {
        var reader = WebSocketFrameReader(role: role)
        var frames: [(WebSocketFrame, [UInt8])] = []
        do {
            for chunk in chunks {
                var bytes = chunk
                try bytes.withUnsafeMutableBytes { raw in
                    try reader.read(UnsafeRawBufferPointer(raw)) { frame, payload in
                        frames.append((frame, Array(payload)))
                        return true
                    }
                }
            }
        } catch {
            return (frames, error as? WebSocketError)
        }
        return (frames, nil)
    }

    @Test func maskedClientFrameIsUnmaskedInPlace() {
        let (frames, error) = Self.read([Self.maskedHello])
        #expect(error == nil)
        #expect(frames.count == 1)
        #expect(frames.first?.1 == Array("Hello".utf8))
        #expect(frames.first?.0.maskingKey == WebSocketMaskingKey(0x37, 0xfa, 0x21, 0x3d))
    }

    @Test func maskedFrameSplitAtEveryByteIsUnmaskedOnce() {
        for cut in 1..<Self.maskedHello.count {
            let (frames, error) = Self.read([Array(Self.maskedHello[..<cut]), Array(Self.maskedHello[cut...])])
            #expect(error == nil)
            #expect(frames.map(\.1) == [Array("Hello".utf8)], "cut at \(cut)")
        }
    }

    @Test func coalescedMaskedFramesEachUnmasked() {
        let (frames, error) = Self.read([Self.maskedHello + Self.maskedHello + Self.maskedHello])
        #expect(error == nil)
        #expect(frames.map(\.1) == Array(repeating: Array("Hello".utf8), count: 3))
    }

    @Test func unmaskedFrameFromClientIsRefused() {
        let (frames, error) = Self.read([[UInt8](hex: "81 05 48 65 6c 6c 6f")])
        #expect(frames.isEmpty)
        #expect(error == .unmaskedFrameFromClient)
        #expect(WebSocketError.unmaskedFrameFromClient.closeCode == .protocolError)
    }

    @Test func clientRoleStillRefusesMaskedFrames() {
        let (_, error) = Self.read([Self.maskedHello], role: .client)
        #expect(error == .maskedFrameFromServer)
    }

    @Test func serverFramesAreUnmasked() {
        var out: [UInt8] = []
        Array("Hello".utf8).withUnsafeBytes { WebSocketFrameEncoder.appendServerFrame(opcode: .text, payload: $0, to: &out) }
        #expect(out == [UInt8](hex: "81 05 48 65 6c 6c 6f"))
        out = []
        WebSocketFrameEncoder.appendServerClose(code: .normalClosure, to: &out)
        #expect(out == [UInt8](hex: "88 02 03 e8"))
        var header = [UInt8](repeating: 0, count: 10)
        let length = header.withUnsafeMutableBytes { WebSocketFrameEncoder.writeServerHeader(opcode: .binary, payloadLength: 160, into: $0) }
        #expect(Array(header[..<length]) == [UInt8](hex: "82 7e 00 a0"))
    }

    @Test func messageReaderInServerRoleDeliversText() throws {
        var reader = WebSocketMessageReader(maxMessageSize: 1024, role: .server)
        var texts: [String] = []
        var bytes = Self.maskedHello
        try bytes.withUnsafeMutableBytes { raw in
            try reader.read(UnsafeRawBufferPointer(raw)) { event in
                if case .text(let text) = event { texts.append(String(decoding: text, as: UTF8.self)) }
            }
        }
        #expect(texts == ["Hello"])
    }
}

@Suite struct WebSocketServerHandshakeTests {
    static func headers(_ pairs: [String: String]) -> (String) -> String? {
        { name in pairs.first { $0.key.lowercased() == name }?.value }
    }

    static let good = ["Upgrade": "websocket", "Connection": "keep-alive, Upgrade", "Sec-WebSocket-Version": "13",
                       "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="]

    @Test func acceptsAndAnswersTheRFCExample() throws {
        let accepted = try WebSocketServerHandshake.check(method: "GET", header: Self.headers(Self.good)).get()
        #expect(accepted == .init(key: "dGhlIHNhbXBsZSBub25jZQ==", subprotocol: nil))
        #expect(String(decoding: WebSocketServerHandshake.response(for: accepted), as: UTF8.self) == """
            HTTP/1.1 101 Switching Protocols\r
            Upgrade: websocket\r
            Connection: Upgrade\r
            Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r
            \r

            """)
    }

    @Test func echoesTheFirstOfferedSubprotocol() throws {
        var pairs = Self.good
        pairs["Sec-WebSocket-Protocol"] = "media, other"
        let accepted = try WebSocketServerHandshake.check(method: "GET", header: Self.headers(pairs)).get()
        #expect(accepted.subprotocol == "media")
        #expect(String(decoding: WebSocketServerHandshake.response(for: accepted), as: UTF8.self)
            .contains("Sec-WebSocket-Protocol: media\r\n"))
    }

    @Test func refusals() {
        func refusal(_ method: String = "GET", _ change: (inout [String: String]) -> Void) -> WebSocketServerHandshake.Refusal? {
            var pairs = Self.good
            change(&pairs)
            if case .failure(let refusal) = WebSocketServerHandshake.check(method: method, header: Self.headers(pairs)) {
                return refusal
            }
            return nil
        }
        #expect(refusal("POST") { _ in } == .notGet("POST"))
        #expect(refusal { $0["Upgrade"] = nil } == .notAnUpgrade)
        #expect(refusal { $0["Connection"] = "keep-alive" } == .notAnUpgrade)
        #expect(refusal { $0["Sec-WebSocket-Version"] = "8" } == .unsupportedVersion("8"))
        #expect(refusal { $0["Sec-WebSocket-Key"] = "c2hvcnQ=" } == .badKey)
        #expect(refusal { $0["Sec-WebSocket-Key"] = "!!!not base64!!!" } == .badKey)
        #expect(WebSocketServerHandshake.Refusal.notAnUpgrade.status == 426)
        #expect(WebSocketServerHandshake.Refusal.badKey.status == 400)
    }
}

@Suite struct MediaControlParserTests {
    static func parse(_ text: String) -> Result<MediaControlEvent, MediaControlError> {
        Result { () throws(MediaControlError) in try MediaControlParser.parse(Array(text.utf8)) }
    }

    /// chan_websocket's `_create_event_MEDIA_START`, plain-text.
    @Test func plainMediaStart() throws {
        let event = try Self.parse("MEDIA_START connection_id:avr channel:WebSocket/avr/0x7f3a5c001234 "
            + "channel_id:1733556000.42 format:slin16 optimal_frame_size:640 ptime:20").get()
        #expect(event == .mediaStart(MediaStart(connectionID: "avr", channel: "WebSocket/avr/0x7f3a5c001234",
                                                channelID: "1733556000.42", format: "slin16", optimalFrameSize: 640,
                                                ptime: 20, controlFormat: .plainText)))
    }

    /// The JSON form, with the channel variables (`AVR_UUID` inherited as `__AVR_UUID`).
    @Test func jsonMediaStartAndItsUUID() throws {
        let text = #"{"event":"MEDIA_START","connection_id":"avr","channel":"WebSocket/avr/0x1","#
            + #""channel_id":"1733556000.42","format":"ulaw","optimal_frame_size":160,"ptime":20,"#
            + #""channel_variables":{"__AVR_UUID":"935652E3-7C59-4EDC-B17F-9646A9C2A265","X":"y"}}"#
        guard case .mediaStart(let start) = try Self.parse(text).get() else { Issue.record("not MEDIA_START"); return }
        #expect(start.format == "ulaw" && start.optimalFrameSize == 160 && start.controlFormat == .json)
        #expect(start.channelVariables == [MediaVariable(name: "__AVR_UUID", value: "935652E3-7C59-4EDC-B17F-9646A9C2A265"),
                                           MediaVariable(name: "X", value: "y")])
        #expect(start.callUUID?.description == "935652e3-7c59-4edc-b17f-9646a9c2a265")
    }

    @Test func channelIdThatIsAUUIDNamesTheCall() throws {
        guard case .mediaStart(let start) = try Self.parse(
            "MEDIA_START channel_id:935652e3-7c59-4edc-b17f-9646a9c2a265 format:alaw").get() else { return }
        #expect(start.callUUID?.description == "935652e3-7c59-4edc-b17f-9646a9c2a265")
        guard case .mediaStart(let other) = try Self.parse("MEDIA_START channel_id:1733556000.42 format:alaw").get() else { return }
        #expect(other.callUUID == nil)
    }

    @Test func everyEventInBothFormats() throws {
        let plain: [(String, MediaControlEvent)] = [
            ("MEDIA_XOFF", .mediaXOFF), ("MEDIA_XON", .mediaXON), ("QUEUE_DRAINED", .queueDrained),
            ("DTMF_END digit:5 channel_id:1.2", .dtmfEnd(digit: UInt8(ascii: "5"))),
            ("STATUS channel_id:1.2 queue_length:12 xon_level:800 xoff_level:900 queue_full:false bulk_media:false media_paused:false",
             .status(queueLength: 12)),
            ("MEDIA_BUFFERING_COMPLETED abc", .mediaBufferingCompleted(correlationID: "abc")),
            ("MEDIA_MARK_PROCESSED m1", .mediaMarkProcessed(correlationID: "m1")),
            ("ERROR channel_id:1.2 error_text:FLUSH_MEDIA not supported in passthrough mode",
             .error(text: "FLUSH_MEDIA not supported in passthrough mode")),
            ("SOMETHING_NEW a:b", .other(name: "SOMETHING_NEW")),
            ("  MEDIA_XON\r\n", .mediaXON),
        ]
        for (text, event) in plain { #expect(try Self.parse(text).get() == event, "\(text)") }
        let json: [(String, MediaControlEvent)] = [
            (#"{"event":"MEDIA_XOFF","channel_id":"1.2"}"#, .mediaXOFF),
            (#"{"event":"MEDIA_XON","channel_id":"1.2"}"#, .mediaXON),
            (#"{"event":"QUEUE_DRAINED","channel_id":"1.2"}"#, .queueDrained),
            (##"{"event":"DTMF_END","channel_id":"1.2","digit":"#"}"##, .dtmfEnd(digit: UInt8(ascii: "#"))),
            (#"{"event":"STATUS","channel_id":"1.2","queue_length":3,"xon_level":800,"xoff_level":900,"queue_full":false,"bulk_media":false,"media_paused":false}"#,
             .status(queueLength: 3)),
            (#"{"event":"MEDIA_BUFFERING_COMPLETED","channel_id":"1.2","correlation_id":"abc"}"#, .mediaBufferingCompleted(correlationID: "abc")),
            (#"{"event":"MEDIA_MARK_PROCESSED","channel_id":"1.2","correlation_id":""}"#, .mediaMarkProcessed(correlationID: "")),
            (#"{"event":"ERROR","channel_id":"1.2","error_text":"x y"}"#, .error(text: "x y")),
        ]
        for (text, event) in json { #expect(try Self.parse(text).get() == event, "\(text)") }
    }

    @Test func garbageIsAClearError() {
        let cases: [(String, MediaControlError)] = [
            ("", .empty), ("   \n", .empty),
            ("lowercase event", .invalidEventName("lowercase")),
            ("\u{e9}t\u{e9}", .invalidEventName("\u{e9}t\u{e9}")),
            ("MEDIA_START", .missingField(event: "MEDIA_START", field: "format")),
            ("MEDIA_START format:ulaw ptime:-5", .invalidField(event: "MEDIA_START", field: "ptime", value: "-5")),
            ("MEDIA_START format:ulaw optimal_frame_size:99999999999999999999",
             .invalidField(event: "MEDIA_START", field: "optimal_frame_size", value: "99999999999999999999")),
            ("DTMF_END", .missingField(event: "DTMF_END", field: "digit")),
            ("DTMF_END digit:55", .invalidField(event: "DTMF_END", field: "digit", value: "55")),
            (#"{"event":42}"#, .noEventName),
            (#"{"command":"HANGUP"}"#, .noEventName),
            (#"{"event":"MEDIA_START","format":"ulaw","ptime":"20"}"#,
             .invalidField(event: "MEDIA_START", field: "ptime", value: #"string("20")"#)),
        ]
        for (text, error) in cases {
            #expect(Self.parse(text) == .failure(error), "\(text.debugDescription)")
        }
        if case .failure(.invalidJSON) = Self.parse("{not json") {} else { Issue.record("{not json parsed") }
        #expect(Self.parse("[1,2]") == .failure(.invalidEventName("[1,2]")))
        if case .failure(.invalidJSON) = Self.parse("{\"event\":\"X\"} trailing") {} else { Issue.record("trailing bytes parsed") }
        let long = [UInt8](repeating: UInt8(ascii: "A"), count: MediaControlParser.maxLength + 1)
        #expect(Result { () throws(MediaControlError) in try MediaControlParser.parse(long) } == .failure(.tooLong(long.count)))
        // Bytes that are not UTF-8 at all (the WebSocket layer refuses them first; the parser
        // must not trap either way).
        let binary: [UInt8] = [0xff, 0xfe, 0x00, 0x41]
        #expect((try? MediaControlParser.parse(binary)) == nil)
    }

    @Test func commandsInBothFormats() {
        #expect(MediaCommand.hangup.encoded(.plainText) == Array("HANGUP".utf8))
        #expect(MediaCommand.flushMedia.encoded(.json) == Array(#"{"command":"FLUSH_MEDIA"}"#.utf8))
    }
}

@Suite struct MediaFormatTests {
    @Test func asteriskNames() {
        #expect(MediaFormat(asteriskName: "ulaw") == .ulaw)
        #expect(MediaFormat(asteriskName: "alaw") == .alaw)
        #expect(MediaFormat(asteriskName: "slin") == .slin(rate: 8000))
        #expect(MediaFormat(asteriskName: "slin16") == .slin(rate: 16000))
        #expect(MediaFormat(asteriskName: "slin44") == .slin(rate: 44100))
        #expect(MediaFormat(asteriskName: "g722") == nil)
        #expect(MediaFormat(asteriskName: "opus") == nil)
        #expect(MediaFormat.slin(rate: 16000).bytesPer20ms == 640)
        #expect(MediaFormat.ulaw.bytesPer20ms == 160)
        #expect(MediaFormat.slin(rate: 16000).description == "SLIN16")
    }

    @Test func upsamplerDoublesAndInterpolates() {
        var up = LinearUpsampler(outputRate: 16000)
        let input: [Int16] = [100, 300, -100]
        var out = [UInt8](repeating: 0, count: 2 * up.maximumOutput(for: input.count))
        let written = input.withUnsafeBufferPointer { samples in
            out.withUnsafeMutableBytes { up.process(samples, into: $0) }
        }
        #expect(written == 12)
        let values = stride(from: 0, to: written, by: 2).map { Int16(bitPattern: UInt16(out[$0]) | UInt16(out[$0 + 1]) << 8) }
        #expect(values == [0, 50, 100, 200, 300, 100])
    }

    @Test func upsamplerKeepsTheRateOverManyFrames() {
        for rate in [12000, 16000, 24000, 44100, 48000] {
            var up = LinearUpsampler(outputRate: rate)
            let frame = [Int16](repeating: 1000, count: 160)
            var out = [UInt8](repeating: 0, count: 2 * up.maximumOutput(for: 160))
            var total = 0
            for _ in 0..<50 {
                total += frame.withUnsafeBufferPointer { samples in out.withUnsafeMutableBytes { up.process(samples, into: $0) } }
            }
            #expect(total / 2 == rate, "\(rate) Hz: \(total / 2) samples in one second")
        }
    }
}

@Suite struct CallUUIDRandomTests {
    @Test func randomUUIDsAreVersion4AndDiffer() {
        let first = CallUUID.random()
        let second = CallUUID.random()
        #expect(first != second)
        let text = first.description
        #expect(CallUUID(string: text) == first)
        let characters = Array(text)
        #expect(characters[14] == "4")
        #expect("89ab".contains(characters[19]))
    }
}
