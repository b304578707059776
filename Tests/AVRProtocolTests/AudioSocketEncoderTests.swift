import Testing
@testable import AVRProtocol

@Suite struct AudioSocketEncoderTests {
    @Test func appendFrameWritesBigEndianLength() {
        var output: [UInt8] = [0xEE]
        let payload: [UInt8] = Array(repeating: 0xAB, count: 320)
        payload.withUnsafeBytes { AudioSocketEncoder.appendFrame(kind: .audio8kHz, payload: $0, to: &output) }
        #expect(output.count == 1 + 3 + 320)
        #expect(Array(output.prefix(4)) == [0xEE, 0x10, 0x01, 0x40])
        #expect(output.dropFirst(4).allSatisfy { $0 == 0xAB })

        var dtmf: [UInt8] = []
        [UInt8(ascii: "7")].withUnsafeBytes { AudioSocketEncoder.appendFrame(kind: .dtmf, payload: $0, to: &dtmf) }
        #expect(dtmf == [0x03, 0x00, 0x01, 0x37])

        var big: [UInt8] = []
        [UInt8](repeating: 1, count: 0xFFFF).withUnsafeBytes { AudioSocketEncoder.appendFrame(kind: .error, payload: $0, to: &big) }
        #expect(Array(big.prefix(3)) == [0xFF, 0xFF, 0xFF])
    }

    @Test func hangup() {
        var output: [UInt8] = []
        AudioSocketEncoder.appendHangup(to: &output)
        #expect(output == [0x00, 0x00, 0x00])
        #expect(AudioSocketEncoder.hangupMessage == [0x00, 0x00, 0x00])
    }

    @Test func writeHeaderIntoFixedBuffer() {
        var storage = [UInt8](repeating: 0x55, count: 5)
        let written = storage.withUnsafeMutableBytes {
            AudioSocketEncoder.writeHeader(kind: .audio16kHz, payloadLength: 640, into: $0)
        }
        #expect(written == 3)
        #expect(storage == [0x12, 0x02, 0x80, 0x55, 0x55])
    }

    static let frame: [Int16] = (0..<160).map { Int16(truncatingIfNeeded: $0 * 409 - 32000) }

    @Test func encodeSlinMessage() {
        var storage = [UInt8](repeating: 0xCC, count: 330)
        let length = Self.frame.withUnsafeBufferPointer { samples in
            storage.withUnsafeMutableBytes {
                AudioSocketEncoder.encodeAudioMessage(samples: samples, into: $0)
            }
        }
        #expect(length == 323)
        #expect(Array(storage.prefix(3)) == [0x10, 0x01, 0x40])
        // -32000 = 0x8300, little-endian in the payload.
        #expect(storage[3] == 0x00 && storage[4] == 0x83)
        #expect(TestSignal.samples(fromLittleEndian: Array(storage[3..<323])) == Self.frame)
        #expect(storage[323...].allSatisfy { $0 == 0xCC })
    }

    /// Playback is slin for every caller: there is no way to ask for G.711 bytes, and silence
    /// is 320 zero bytes, never μ-law `0xFF` or A-law `0xD5` (heard as a buzz by Asterisk).
    @Test func silenceIsSlinZeros() {
        let silence = [Int16](repeating: 0, count: 160)
        var storage = [UInt8](repeating: 0x11, count: 323)
        let length = silence.withUnsafeBufferPointer { samples in
            storage.withUnsafeMutableBytes { AudioSocketEncoder.encodeAudioMessage(samples: samples, into: $0) }
        }
        #expect(length == 323)
        #expect(AudioSocketEncoder.audioMessageLength(sampleCount: 160) == 323)
        #expect(storage[3..<length].allSatisfy { $0 == 0 })
    }

    @Test func encodedMessagesDecode() throws {
        var output: [UInt8] = []
        var storage = [UInt8](repeating: 0, count: 323)
        for count in [160, 80, 1] {
            let length = Self.frame.withUnsafeBufferPointer { samples in
                storage.withUnsafeMutableBytes {
                    AudioSocketEncoder.encodeAudioMessage(samples: UnsafeBufferPointer(rebasing: samples[0..<count]), into: $0)
                }
            }
            output.append(contentsOf: storage.prefix(length))
        }
        AudioSocketEncoder.appendHangup(to: &output)
        var decoder = AudioSocketDecoder()
        var buffer = ByteBuffer(bytes: output)
        var lengths: [Int] = []
        while let frame = try decoder.decode(&buffer) {
            switch frame {
            case .audio(let audio):
                #expect(audio.kind == .audio8kHz)
                lengths.append(audio.payloadLength)
            case .hangup: lengths.append(0)
            default: Issue.record("unexpected \(frame)")
            }
        }
        #expect(lengths == [320, 160, 2, 0])
    }
}
