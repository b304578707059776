import Testing
@testable import AVRProtocol

@Suite struct WebSocketFrameDecoderTests {
    typealias Frame = FrameDecodeOutcome.Frame

    /// Feeds `bytes` whole, byte by byte and split at every index (or `splitIndices`) and
    /// expects the same outcome every time.
    private func verify(
        _ bytes: [UInt8],
        _ expected: FrameDecodeOutcome,
        maxFrameSize: Int = WebSocketFrameDecoder.defaultMaxFrameSize,
        splitIndices: [Int]? = nil,
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        for (label, chunks) in chunkings(of: bytes, splitIndices: splitIndices) {
            let outcome = decodeFrames(chunks, maxFrameSize: maxFrameSize)
            #expect(outcome == expected, "\(label)", sourceLocation: sourceLocation)
            let inPlace = readFramesInPlace(chunks, maxFrameSize: maxFrameSize)
            #expect(inPlace == expected, "in place, \(label)", sourceLocation: sourceLocation)
        }
    }

    private func frames(_ frames: Frame...) -> FrameDecodeOutcome {
        FrameDecodeOutcome(frames: frames)
    }

    private func failure(_ error: WebSocketError, after frames: Frame...) -> FrameDecodeOutcome {
        FrameDecodeOutcome(frames: frames, error: error, leftover: 0)
    }

    // MARK: RFC 6455 §5.7

    @Test func unmaskedHello() {
        verify([UInt8](hex: "81 05 48 65 6c 6c 6f"), frames(Frame(fin: true, opcode: .text, payload: Array("Hello".utf8))))
    }

    @Test func fragmentedHello() {
        verify(
            [UInt8](hex: "01 03 48 65 6c 80 02 6c 6f"),
            frames(
                Frame(fin: false, opcode: .text, payload: Array("Hel".utf8)),
                Frame(fin: true, opcode: .continuation, payload: Array("lo".utf8))))
    }

    @Test func pingAndPongHello() {
        verify(
            [UInt8](hex: "89 05 48 65 6c 6c 6f 8a 05 48 65 6c 6c 6f"),
            frames(
                Frame(fin: true, opcode: .ping, payload: Array("Hello".utf8)),
                Frame(fin: true, opcode: .pong, payload: Array("Hello".utf8))))
    }

    @Test func binary256BytesUses16BitLength() {
        var generator = SplitMix64(seed: 1)
        let payload = [UInt8].random(count: 256, using: &generator)
        verify([UInt8](hex: "82 7E 01 00") + payload, frames(Frame(fin: true, opcode: .binary, payload: payload)))
    }

    @Test func binary64KiBUses64BitLength() {
        var generator = SplitMix64(seed: 2)
        let payload = [UInt8].random(count: 65536, using: &generator)
        let bytes = [UInt8](hex: "82 7F 00 00 00 00 00 01 00 00") + payload
        // Every split inside the header, and a few inside the payload.
        verify(bytes, frames(Frame(fin: true, opcode: .binary, payload: payload)),
               splitIndices: Array(0...11) + [1000, 65535, 65545, 65546])
    }

    @Test func emptyFramesAndTrailingPartialFrame() {
        verify(
            [UInt8](hex: "81 00 82 00 8a 00 81 05 48 65"),
            FrameDecodeOutcome(
                frames: [
                    Frame(fin: true, opcode: .text, payload: []),
                    Frame(fin: true, opcode: .binary, payload: []),
                    Frame(fin: true, opcode: .pong, payload: []),
                ],
                error: nil, leftover: 4))
    }

    @Test func nonMinimalLengthEncodingsAreAccepted() {
        // RFC 6455 asks senders for the minimal form; receivers lose nothing by accepting more.
        verify([UInt8](hex: "81 7E 00 02 68 69"), frames(Frame(fin: true, opcode: .text, payload: Array("hi".utf8))))
        verify([UInt8](hex: "81 7F 00 00 00 00 00 00 00 02 68 69"), frames(Frame(fin: true, opcode: .text, payload: Array("hi".utf8))))
    }

    // MARK: Errors

    @Test func maskedServerFrameIsAProtocolError() {
        verify([UInt8](hex: "81 85 37 fa 21 3d 7f 9f 4d 51 58"), failure(.maskedFrameFromServer))
        #expect(WebSocketError.maskedFrameFromServer.closeCode == .protocolError)
    }

    @Test func errorAfterAGoodFrame() {
        verify(
            [UInt8](hex: "81 01 41 c1 01 41"),
            failure(.reservedBitsSet, after: Frame(fin: true, opcode: .text, payload: [0x41])))
    }

    @Test func reservedBitsAreRejected() {
        for first: UInt8 in [0xC1, 0xA1, 0x91] {
            verify([first, 0x00], failure(.reservedBitsSet))
        }
    }

    @Test func unknownOpcodesAreRejected() {
        for opcode: UInt8 in [3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF] {
            verify([0x80 | opcode, 0x00], failure(.unknownOpcode(opcode)))
        }
    }

    @Test func controlFramesMustBeShortAndFinal() {
        verify([UInt8](hex: "09 00"), failure(.fragmentedControlFrame))
        verify([UInt8](hex: "08 00"), failure(.fragmentedControlFrame))
        verify([UInt8](hex: "89 7E 00 7E") + [UInt8](repeating: 0, count: 126), failure(.controlFrameTooLarge),
               splitIndices: [0, 1, 2, 3, 4, 100])
        verify([UInt8](hex: "88 7F 00 00 00 00 00 00 00 7E"), failure(.controlFrameTooLarge))
        verify([UInt8](hex: "88 7F 00 00 01 00 00 00 00 00"), failure(.controlFrameTooLarge))
        // 125 bytes is fine.
        verify([UInt8](hex: "89 7D") + [UInt8](repeating: 7, count: 125),
               frames(Frame(fin: true, opcode: .ping, payload: [UInt8](repeating: 7, count: 125))),
               splitIndices: [0, 1, 2, 126, 127])
    }

    @Test func sixtyFourBitLengthWithMostSignificantBitSetIsAnErrorNotATrap() {
        verify([UInt8](hex: "82 7F 80 00 00 00 00 00 00 00"), failure(.invalidPayloadLength))
        verify([UInt8](hex: "82 7F FF FF FF FF FF FF FF FF"), failure(.invalidPayloadLength))
    }

    @Test func hugeLengthsAreTooLargeNotATrap() {
        verify([UInt8](hex: "82 7F 7F FF FF FF FF FF FF FF"), failure(.messageTooLarge))
        verify([UInt8](hex: "82 7F 00 00 00 01 00 00 00 00"), failure(.messageTooLarge))
        // One byte over the configured maximum, before any payload arrives.
        verify([UInt8](hex: "82 7F 00 00 00 00 00 10 00 01"), failure(.messageTooLarge))
        verify([UInt8](hex: "82 7E 01 00"), failure(.messageTooLarge), maxFrameSize: 255)
        verify([UInt8](hex: "82 7E 00 FF"), FrameDecodeOutcome(frames: [], error: nil, leftover: 4), maxFrameSize: 255)
        #expect(WebSocketError.messageTooLarge.closeCode == .messageTooBig)
        #expect(WebSocketError.messageTooLarge.closeCode.rawValue == 1009)
    }

    @Test func payloadRangeIndexesTheBufferStorage() throws {
        var decoder = WebSocketFrameDecoder()
        var buffer = ByteBuffer()
        buffer.append(contentsOf: [UInt8](hex: "81 02 68 69 82 01 07"))
        let first = try #require(try decoder.decode(&buffer))
        #expect(first.payloadRange == 2..<4)
        #expect(buffer.readerIndex == 0, "the frame is consumed on the next call, not before")
        let second = try #require(try decoder.decode(&buffer))
        #expect(second.payloadRange == 6..<7)
        #expect(buffer.storage[second.payloadRange] == [7])
        #expect(try decoder.decode(&buffer) == nil)
        #expect(buffer.readableBytes == 0)
    }
}

/// What the in-place reader copies: nothing for frames that arrive whole, only the
/// incomplete frame otherwise.
@Suite struct WebSocketFrameReaderTests {
    static func textFrame(_ count: Int) -> [UInt8] {
        let header: [UInt8] = count < 126 ? [0x81, UInt8(count)] : [0x81, 126, UInt8(count >> 8), UInt8(count & 0xFF)]
        return header + [UInt8](repeating: 0x61, count: count)
    }

    @Test func wholeFramesAreNeverCopied() throws {
        var reader = WebSocketFrameReader()
        var seen = 0
        let read = Self.textFrame(466) + Self.textFrame(466) + Self.textFrame(20)
        for _ in 0..<50 {
            try read.withUnsafeBytes { bytes in
                try reader.read(bytes) { frame, payload in
                    seen += 1
                    #expect(payload.count == frame.payloadLength)
                    return true
                }
            }
        }
        #expect(seen == 150)
        #expect(reader.copiedBytes == 0)
        #expect(reader.bufferedBytes == 0)
    }

    @Test func onlyTheIncompleteFrameIsCopied() throws {
        var reader = WebSocketFrameReader()
        let stream = Self.textFrame(466) + Self.textFrame(466)
        var payloads: [[UInt8]] = []
        // The read ends 100 bytes into the second frame.
        for chunk in [Array(stream[..<568]), Array(stream[568...])] {
            try chunk.withUnsafeBytes { bytes in
                try reader.read(bytes) { _, payload in
                    payloads.append(Array(payload))
                    return true
                }
            }
        }
        #expect(payloads == [[UInt8](repeating: 0x61, count: 466), [UInt8](repeating: 0x61, count: 466)])
        #expect(reader.copiedBytes == 470, "the whole second frame, once: its first 100 bytes and the other 370")
    }

    @Test func stoppingDropsTheRest() throws {
        var reader = WebSocketFrameReader()
        var seen = 0
        let read = Self.textFrame(10) + Self.textFrame(10) + Self.textFrame(10)
        try read.withUnsafeBytes { bytes in
            try reader.read(bytes) { _, _ in
                seen += 1
                return false
            }
        }
        #expect(seen == 1)
        #expect(reader.bufferedBytes == 0)
    }
}
