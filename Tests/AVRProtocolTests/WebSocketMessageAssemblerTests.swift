import Testing
@testable import AVRProtocol

@Suite struct WebSocketMessageAssemblerTests {
    private func verify(
        _ bytes: [UInt8],
        _ expected: [ReceivedEvent],
        maxMessageSize: Int = WebSocketMessageAssembler.defaultMaxMessageSize,
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        for (label, chunks) in chunkings(of: bytes) {
            #expect(readMessages(chunks, maxMessageSize: maxMessageSize) == expected, "\(label)", sourceLocation: sourceLocation)
            #expect(readMessages(chunks, maxMessageSize: maxMessageSize, inPlace: true) == expected, "in place, \(label)",
                    sourceLocation: sourceLocation)
        }
    }

    @Test func singleFrameMessages() {
        verify([UInt8](hex: "81 05 48 65 6c 6c 6f 82 03 01 02 03"), [.text("Hello"), .binary([1, 2, 3])])
    }

    @Test func reassemblesFragmentsWithInterleavedControlFrames() {
        verify([UInt8](hex: "01 03 48 65 6c 80 02 6c 6f"), [.text("Hello")])
        verify(
            [UInt8](hex: "01 03 48 65 6c 89 01 21 00 01 6c 8a 00 80 01 6f"),
            [.ping([0x21]), .pong([]), .text("Hello")])
        verify([UInt8](hex: "02 01 01 00 00 00 01 02 80 01 03 81 01 41"), [.binary([1, 2, 3]), .text("A")])
    }

    @Test func continuationRulesAreEnforced() {
        verify([UInt8](hex: "80 02 6c 6f"), [.failed(.unexpectedContinuation)])
        verify([UInt8](hex: "00 02 6c 6f"), [.failed(.unexpectedContinuation)])
        verify([UInt8](hex: "01 01 48 81 01 48"), [.failed(.expectedContinuation)])
        verify([UInt8](hex: "01 01 48 02 01 48"), [.failed(.expectedContinuation)])
        // Once a message completes, a new one may start.
        verify([UInt8](hex: "01 01 48 80 01 69 01 01 48 80 01 6f"), [.text("Hi"), .text("Ho")])
    }

    @Test func oversizeMessagesMapTo1009() {
        verify([UInt8](hex: "82 0B") + [UInt8](repeating: 0, count: 11), [.failed(.messageTooLarge)], maxMessageSize: 10)
        verify([UInt8](hex: "82 0A") + [UInt8](repeating: 0, count: 10), [.binary([UInt8](repeating: 0, count: 10))], maxMessageSize: 10)
        verify(
            [UInt8](hex: "01 06 61 61 61 61 61 61 80 05 62 62 62 62 62"),
            [.failed(.messageTooLarge)], maxMessageSize: 10)
        verify(
            [UInt8](hex: "01 06 61 61 61 61 61 61 80 04 62 62 62 62"),
            [.text("aaaaaabbbb")], maxMessageSize: 10)
        #expect(WebSocketError.messageTooLarge.closeCode.rawValue == 1009)
    }

    @Test func invalidUTF8MapsTo1007() {
        verify([UInt8](hex: "81 02 c3 28"), [.failed(.invalidUTF8)])
        verify([UInt8](hex: "81 04 ed a0 80 41"), [.failed(.invalidUTF8)])
        verify([UInt8](hex: "01 01 c3 80 01 28"), [.failed(.invalidUTF8)])
        // A code point split across fragments is fine.
        verify([UInt8](hex: "01 01 c3 80 01 a9"), [.text("é")])
        // Binary is not checked.
        verify([UInt8](hex: "82 02 c3 28"), [.binary([0xC3, 0x28])])
        #expect(WebSocketError.invalidUTF8.closeCode.rawValue == 1007)
    }

    @Test func closeFrames() {
        verify([UInt8](hex: "88 00"), [.close(nil, "")])
        verify([UInt8](hex: "88 02 03 e8"), [.close(1000, "")])
        verify([UInt8](hex: "88 05 03 e9 62 79 65"), [.close(1001, "bye")])
        verify([UInt8](hex: "88 02 0b b8"), [.close(3000, "")])
        verify([UInt8](hex: "88 02 13 87"), [.close(4999, "")])
        verify([UInt8](hex: "88 02 03 f4"), [.close(1012, "")])
        verify([UInt8](hex: "88 01 03"), [.failed(.invalidClosePayload)])
        verify([UInt8](hex: "88 04 03 e8 c3 28"), [.failed(.invalidUTF8)])
        // A close inside a fragmented message is allowed.
        verify([UInt8](hex: "01 01 48 88 02 03 e8"), [.close(1000, "")])
    }

    @Test func closeCodeValidation() {
        for code: UInt16 in [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535] {
            verify([0x88, 0x02, UInt8(code >> 8), UInt8(code & 0xFF)], [.failed(.invalidCloseCode(code))])
        }
        for code: UInt16 in [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999] {
            #expect(WebSocketCloseCode(code).isValidOnTheWire, "\(code)")
        }
    }

    @Test func nothingIsDeliveredAfterClose() {
        verify([UInt8](hex: "88 00 81 01 41 c1"), [.close(nil, "")])
    }

    @Test func frameErrorsPassThrough() {
        verify([UInt8](hex: "81 81 00 00 00 00 41"), [.failed(.maskedFrameFromServer)])
        verify([UInt8](hex: "81 01 41 83 00"), [.text("A"), .failed(.unknownOpcode(3))])
    }

    @Test func unfragmentedTextIsDeliveredFromTheReadBuffer() throws {
        var reader = WebSocketMessageReader()
        var buffer = ByteBuffer()
        buffer.append(contentsOf: [UInt8](hex: "81 02 68 69"))
        let storageStart = buffer.storage.withUnsafeBytes { $0.baseAddress }
        var delivered: UnsafeRawPointer?
        try reader.read(&buffer) { event in
            if case .text(let bytes) = event { delivered = bytes.baseAddress }
        }
        #expect(delivered == storageStart.map { $0 + 2 })
    }
}

@Suite struct UTF8ValidatorTests {
    private func isValid(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { UTF8Validator.isValid($0) }
    }

    @Test func acceptsWellFormedText() {
        #expect(isValid([]))
        #expect(isValid(Array("plain ASCII longer than one word".utf8)))
        #expect(isValid(Array("κόσμε € 😀 \u{10FFFF} \u{D7FF} \u{E000}".utf8)))
    }

    @Test func rejectsMalformedSequences() {
        let bad: [[UInt8]] = [
            [0x80], [0xBF], [0xC0, 0x80], [0xC1, 0xBF], [0xE0, 0x80, 0x80], [0xE0, 0x9F, 0xBF],
            [0xED, 0xA0, 0x80], [0xED, 0xBF, 0xBF], [0xF0, 0x80, 0x80, 0x80], [0xF0, 0x8F, 0xBF, 0xBF],
            [0xF4, 0x90, 0x80, 0x80], [0xF5, 0x80, 0x80, 0x80], [0xFF], [0xE2, 0x82], [0xF0, 0x9F, 0x98],
            [0xC3, 0x28], [0xE2, 0x28, 0xA1],
        ]
        for sequence in bad {
            #expect(!isValid(sequence), "\(sequence.hex)")
            // Also after a run of ASCII long enough to take the word-at-a-time path.
            #expect(!isValid(Array("0123456789abc".utf8) + sequence), "\(sequence.hex) after ASCII")
        }
    }
}
