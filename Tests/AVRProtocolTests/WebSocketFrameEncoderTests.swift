import Testing
@testable import AVRProtocol

@Suite struct WebSocketFrameEncoderTests {
    static let rfcKey = WebSocketMaskingKey(0x37, 0xFA, 0x21, 0x3D)

    private func encode(_ opcode: WebSocketOpcode, fin: Bool = true, _ payload: [UInt8], key: WebSocketMaskingKey = rfcKey) -> [UInt8] {
        var output: [UInt8] = []
        payload.withUnsafeBytes {
            WebSocketFrameEncoder.appendFrame(opcode: opcode, fin: fin, payload: $0, maskingKey: key, to: &output)
        }
        return output
    }

    private func unmask(_ bytes: some Collection<UInt8>, key: WebSocketMaskingKey) -> [UInt8] {
        bytes.enumerated().map { $0.element ^ key[$0.offset] }
    }

    /// RFC 6455 §5.7.
    @Test func maskedHello() {
        #expect(encode(.text, Array("Hello".utf8)) == [UInt8](hex: "81 85 37 fa 21 3d 7f 9f 4d 51 58"))
    }

    @Test func fragmentAndControlFrames() {
        #expect(encode(.text, fin: false, Array("Hel".utf8)) == [UInt8](hex: "01 83 37 fa 21 3d 7f 9f 4d"))
        #expect(encode(.ping, Array("Hello".utf8)) == [UInt8](hex: "89 85 37 fa 21 3d 7f 9f 4d 51 58"))
        #expect(encode(.pong, []) == [UInt8](hex: "8a 80 37 fa 21 3d"))
    }

    @Test func extendedLengths() {
        var generator = SplitMix64(seed: 3)
        for (count, header) in [(125, "82 FD"), (126, "82 FE 00 7E"), (256, "82 FE 01 00"), (65535, "82 FE FF FF"),
                                (65536, "82 FF 00 00 00 00 00 01 00 00")] {
            let payload = [UInt8].random(count: count, using: &generator)
            let frame = encode(.binary, payload)
            let headerBytes = [UInt8](hex: header) + [0x37, 0xFA, 0x21, 0x3D]
            #expect(Array(frame.prefix(headerBytes.count)) == headerBytes, "\(count)")
            #expect(unmask(frame.dropFirst(headerBytes.count), key: Self.rfcKey) == payload, "\(count)")
        }
    }

    @Test func maskingMatchesTheNaiveDefinitionAtEveryLengthAndPhase() {
        var generator = SplitMix64(seed: 4)
        for count in 0..<40 {
            let source = [UInt8].random(count: count, using: &generator)
            let key = WebSocketMaskingKey(UInt8(count), 0x5A, 0xC3, 0xFF)
            for phase in 0..<4 {
                var destination = [UInt8](repeating: 0, count: count)
                source.withUnsafeBytes { from in
                    destination.withUnsafeMutableBytes {
                        WebSocketFrameEncoder.copyMasked(from, to: $0, key: key, phase: phase)
                    }
                }
                let expected = source.enumerated().map { $0.element ^ key[$0.offset + phase] }
                #expect(destination == expected, "count \(count) phase \(phase)")
            }
        }
    }

    @Test func closeFrames() {
        var output: [UInt8] = []
        WebSocketFrameEncoder.appendClose(code: .normalClosure, reason: "bye", maskingKey: Self.rfcKey, to: &output)
        #expect(Array(output.prefix(6)) == [UInt8](hex: "88 85 37 fa 21 3d"))
        #expect(unmask(output.dropFirst(6), key: Self.rfcKey) == [0x03, 0xE8] + Array("bye".utf8))
        output.removeAll()
        WebSocketFrameEncoder.appendClose(code: nil, maskingKey: Self.rfcKey, to: &output)
        #expect(output == [UInt8](hex: "88 80 37 fa 21 3d"))
    }

    @Test func appendsAfterExistingBytes() {
        var output: [UInt8] = [0xAB]
        Array("Hello".utf8).withUnsafeBytes {
            WebSocketFrameEncoder.appendPing(payload: $0, maskingKey: Self.rfcKey, to: &output)
        }
        #expect(output == [0xAB] + [UInt8](hex: "89 85 37 fa 21 3d 7f 9f 4d 51 58"))
    }

    @Test func maskingKeySourceRefillsItsBlockWhenUsedUp() {
        final class Counter: @unchecked Sendable { var refills = 0 }
        let counter = Counter()
        var source = WebSocketMaskingKeySource { buffer in
            counter.refills += 1
            for index in buffer.indices { buffer[index] = UInt8(truncatingIfNeeded: index / 4 + counter.refills) }
        }
        #expect(source.next() == WebSocketMaskingKey(1, 1, 1, 1))
        #expect(source.next() == WebSocketMaskingKey(2, 2, 2, 2))
        for _ in 2..<1024 { _ = source.next() }
        #expect(counter.refills == 1)
        #expect(source.next() == WebSocketMaskingKey(2, 2, 2, 2), "second block starts over")
        #expect(counter.refills == 2)
    }

    @Test func systemMaskingKeysVary() {
        var source = WebSocketMaskingKeySource()
        let keys = (0..<64).map { _ in source.next() }
        #expect(Set(keys).count > 60)
    }
}
