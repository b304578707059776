import Testing
@testable import AVRProtocol

@Suite struct AudioSocketDecoderTests {
    typealias V = AudioSocketDecoderVerifier

    static let uuidBytes: [UInt8] = [
        0x93, 0x56, 0x52, 0xE3, 0x7C, 0x59, 0x4E, 0xDC, 0xB1, 0x7F, 0x96, 0x46, 0xA9, 0xC2, 0xA2, 0x65,
    ]
    static let uuid = CallUUID(string: "935652e3-7c59-4edc-b17f-9646a9c2a265")!

    /// 320 bytes of s16le with every byte distinct from its neighbours, to catch offset errors.
    static let slinPayload: [UInt8] = (0..<320).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) }

    @Test func uuidMessage() {
        V.verify([0x01, 0x00, 0x10] + Self.uuidBytes, expect: [.uuid(Self.uuid)])
    }

    @Test func uuidRendersLowercaseAndParsesEitherCase() {
        #expect(Self.uuid.description == "935652e3-7c59-4edc-b17f-9646a9c2a265")
        #expect(CallUUID(bytes: Self.uuidBytes) == Self.uuid)
        #expect(CallUUID(string: "935652E3-7C59-4EDC-B17F-9646A9C2A265") == Self.uuid)
        #expect(Self.uuid.bytes == Self.uuidBytes)
        #expect(CallUUID(string: "935652e3-7c59-4edc-b17f-9646a9c2a26") == nil)
        #expect(CallUUID(string: "935652e3-7c59-4edc-b17f-9646a9c2a2650") == nil)
        #expect(CallUUID(string: "935652e37c594edcb17f9646a9c2a265") == nil)
        #expect(CallUUID(string: "935652e3-7c59-4edc-b17f-9646a9c2a26g") == nil)
        #expect(CallUUID(string: "935652e3_7c59-4edc-b17f-9646a9c2a265") == nil)
        #expect(CallUUID(bytes: Self.uuidBytes.dropLast()) == nil)
        #expect(CallUUID(high: 0, low: 0).description == "00000000-0000-0000-0000-000000000000")
        #expect(CallUUID(high: .max, low: .max).description == "ffffffff-ffff-ffff-ffff-ffffffffffff")
    }

    @Test func slinAudioLengthIsBigEndian() {
        // 0x0140 = 320. Read little-endian it would be 0x4001 = 16385: too large.
        V.verify([0x10, 0x01, 0x40] + Self.slinPayload, expect: [.audio(.audio8kHz, Self.slinPayload)])
    }

    @Test func dtmfMessages() {
        V.verify([0x03, 0x00, 0x01, 0x35], expect: [.dtmf("5")])
        for ascii in Array("0123456789*#ABCD".utf8) {
            V.verify([0x03, 0x00, 0x01, ascii], expect: [.dtmf(Character(Unicode.Scalar(ascii)))])
        }
        // A byte that is no key is one bad key press, not a broken stream: decoding goes on.
        for ascii in Array("aExX +\u{0}".utf8) + [0xFF] {
            V.verify([0x03, 0x00, 0x01, ascii, 0x03, 0x00, 0x01, 0x37], expect: [.invalidDTMF(ascii), .dtmf("7")])
        }
    }

    @Test func hangupAndToleratedHangupPayload() {
        V.verify([0x00, 0x00, 0x00], expect: [.hangup])
        // Extra bytes in a hangup are consumed and ignored.
        V.verify([0x00, 0x00, 0x02, 0xAA, 0xBB, 0x00, 0x00, 0x00], expect: [.hangup, .hangup])
    }

    @Test func errorMessages() {
        V.verify([0xFF, 0x00, 0x00], expect: [.error([])])
        V.verify([0xFF, 0x00, 0x01, 0x04], expect: [.error([0x04])])
        V.verify([0xFF, 0x00, 0x03, 0x01, 0x02, 0x03], expect: [.error([1, 2, 3])])
    }

    @Test func coalescedCallTranscript() {
        let g711: [UInt8] = (0..<160).map { UInt8($0) }
        let wideband: [UInt8] = (0..<640).map { UInt8(truncatingIfNeeded: 255 - $0) }
        let bytes: [UInt8] =
            [0x01, 0x00, 0x10] + Self.uuidBytes
            + [0x10, 0x01, 0x40] + Self.slinPayload
            + [0x10, 0x00, 0xA0] + g711
            + [0x03, 0x00, 0x01, UInt8(ascii: "#")]
            + [0x12, 0x02, 0x80] + wideband
            + [0x10, 0x00, 0x01, 0x7F]
            + [0x00, 0x00, 0x00]
        V.verify(bytes, expect: [
            .uuid(Self.uuid),
            .audio(.audio8kHz, Self.slinPayload),
            .audio(.audio8kHz, g711),
            .dtmf("#"),
            .audio(.audio16kHz, wideband),
            .audio(.audio8kHz, [0x7F]),
            .hangup,
        ])
    }

    @Test func everyAudioKindAndRate() {
        let rates = [8000, 12000, 16000, 24000, 32000, 44100, 48000, 96000, 192000]
        for (offset, rate) in rates.enumerated() {
            let kind = AudioSocketKind(audioSampleRate: rate)!
            #expect(kind.rawValue == 0x10 + UInt8(offset))
            #expect(kind.sampleRate == rate)
            #expect(kind.isAudio)
            V.verify([kind.rawValue, 0x00, 0x02, 0x34, 0x12], expect: [.audio(kind, [0x34, 0x12])])
        }
        #expect(AudioSocketKind(audioSampleRate: 11025) == nil)
        #expect(AudioSocketKind.uuid.sampleRate == nil)
        #expect(!AudioSocketKind.error.isAudio)
    }

    @Test func zeroLengthPayloads() {
        V.verify([0x10, 0x00, 0x00], expect: [], error: .invalidPayloadLength(kind: .audio8kHz, length: 0))
        V.verify([0x16, 0x00, 0x00], expect: [], error: .invalidPayloadLength(kind: .audio48kHz, length: 0))
        V.verify([0x01, 0x00, 0x00], expect: [], error: .invalidPayloadLength(kind: .uuid, length: 0))
        V.verify([0x03, 0x00, 0x00], expect: [], error: .invalidPayloadLength(kind: .dtmf, length: 0))
    }

    @Test func wrongControlLengthsFailOnTheHeader() {
        // The error comes from the 3-byte header alone, whatever follows.
        V.verify([0x01, 0x00, 0x0F] + Self.uuidBytes.prefix(15), expect: [], error: .invalidPayloadLength(kind: .uuid, length: 15))
        V.verify([0x01, 0x00, 0x11] + Self.uuidBytes + [0], expect: [], error: .invalidPayloadLength(kind: .uuid, length: 17))
        V.verify([0x03, 0x00, 0x02, 0x31, 0x32], expect: [], error: .invalidPayloadLength(kind: .dtmf, length: 2))
        V.verify([0x01, 0x00], expect: [])
        expectError([0x01, 0x10, 0x00], .invalidPayloadLength(kind: .uuid, length: 4096))
    }

    @Test func oddLengthsOnlyAllowedAt8kHz() {
        V.verify([0x10, 0x00, 0x03, 1, 2, 3], expect: [.audio(.audio8kHz, [1, 2, 3])])
        V.verify([0x12, 0x00, 0x03, 1, 2, 3], expect: [], error: .invalidPayloadLength(kind: .audio16kHz, length: 3))
        V.verify([0x18, 0x00, 0x01, 1], expect: [], error: .invalidPayloadLength(kind: .audio192kHz, length: 1))
    }

    @Test func maximumLengths() {
        let limit = AudioSocketDecoder.defaultMaximumPayloadLength
        let largest = (0..<limit).map { UInt8(truncatingIfNeeded: $0) }
        let header: [UInt8] = [0x18, UInt8(limit >> 8), UInt8(limit & 0xFF)]
        let outcome = V.decode(chunks: [(header + largest)[...]])
        #expect(outcome == DecodeOutcome(messages: [.audio(.audio192kHz, largest)]))
        // One over: rejected from the header, without waiting for (or buffering) the payload.
        expectError([0x18, 0x20, 0x01], .payloadTooLarge(kind: .audio192kHz, length: 8193))
        expectError([0x10, 0xFF, 0xFF], .payloadTooLarge(kind: .audio8kHz, length: 65535))
        expectError([0xFF, 0x20, 0x01], .payloadTooLarge(kind: .error, length: 8193))
        expectError([0x00, 0x20, 0x01], .payloadTooLarge(kind: .hangup, length: 8193))
        // A lower limit applies to every kind.
        V.verify([0x10, 0x00, 0x21] + Array(repeating: 0xFF, count: 33), expect: [],
                 error: .payloadTooLarge(kind: .audio8kHz, length: 33), maximumPayloadLength: 32)
        V.verify([0x10, 0x00, 0x20] + Array(repeating: 0xFF, count: 32),
                 expect: [.audio(.audio8kHz, Array(repeating: 0xFF, count: 32))], maximumPayloadLength: 32)
    }

    @Test func garbageFailsOnTheFirstByte() {
        expectError(Array("G".utf8), .unknownKind(0x47))
        V.verify(Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8), expect: [], error: .unknownKind(0x47))
        V.verify(Array("POST /call HTTP/1.1\r\n".utf8), expect: [], error: .unknownKind(0x50))
        for kind: UInt8 in [0x02, 0x04, 0x0F, 0x19, 0x20, 0x7F, 0x80, 0xFE] {
            expectError([kind], .unknownKind(kind))
        }
        // A TLS ClientHello starts 16 03 01: 0x16 is 48 kHz audio, with an odd length.
        V.verify([0x16, 0x03, 0x01, 0x02, 0x00, 0x01], expect: [], error: .invalidPayloadLength(kind: .audio48kHz, length: 0x0301))
    }

    @Test func errorAfterValidMessages() {
        V.verify([0x01, 0x00, 0x10] + Self.uuidBytes + [0x10, 0x00, 0x02, 0x01, 0x02, 0x42],
                 expect: [.uuid(Self.uuid), .audio(.audio8kHz, [1, 2])], error: .unknownKind(0x42))
    }

    @Test func audioPayloadStaysReadableWhileMoreBytesArrive() throws {
        var decoder = AudioSocketDecoder()
        var buffer = ByteBuffer()
        buffer.append(contentsOf: [0x10, 0x00, 0x04, 1, 2, 3, 4, 0x10, 0x00])
        guard case .audio(let audio) = try decoder.decode(&buffer) else {
            Issue.record("expected audio")
            return
        }
        #expect(audio.payloadLength == 4)
        #expect(audio.sampleRate == 8000)
        // More bytes arrive (and the buffer may compact) before the caller reads the payload.
        buffer.append(contentsOf: [0x02, 5, 6])
        #expect(audio.withPayload(in: buffer) { Array($0) } == [1, 2, 3, 4])
        guard case .audio(let second) = try decoder.decode(&buffer) else {
            Issue.record("expected audio")
            return
        }
        #expect(second.withPayload(in: buffer) { Array($0) } == [5, 6])
        #expect(try decoder.decode(&buffer) == nil)
        #expect(buffer.isEmpty)
    }

    @Test func longStreamReusesTheBuffer() throws {
        var decoder = AudioSocketDecoder()
        var buffer = ByteBuffer()
        var frames = 0
        let message: [UInt8] = [0x10, 0x01, 0x40] + Self.slinPayload
        for _ in 0..<500 {
            buffer.append(contentsOf: message)
            while let frame = try decoder.decode(&buffer) {
                guard case .audio(let audio) = frame else { Issue.record("unexpected \(frame)"); return }
                #expect(audio.withPayload(in: buffer) { $0.elementsEqual(Self.slinPayload) })
                frames += 1
            }
            #expect(buffer.readableBytes == 0)
        }
        #expect(frames == 500)
        #expect(buffer.readerIndex == 0)
    }

    private func expectError(_ bytes: [UInt8], _ error: AudioSocketError, sourceLocation: SourceLocation = #_sourceLocation) {
        var decoder = AudioSocketDecoder()
        var buffer = ByteBuffer(bytes: bytes)
        #expect(throws: error, sourceLocation: sourceLocation) { try decoder.decode(&buffer) }
    }
}
