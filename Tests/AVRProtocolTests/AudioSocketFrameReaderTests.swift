import Testing
@testable import AVRProtocol

/// `AudioSocketFrameReader` beyond the shared vectors (every `AudioSocketDecoderVerifier.verify`
/// also runs it): what it copies, a call's worth of frames in arbitrary reads, and stopping.
@Suite struct AudioSocketFrameReaderTests {
    static let frame: [UInt8] = [0x10, 0x01, 0x40] + (0..<320).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) }

    func feed(_ reader: inout AudioSocketFrameReader, _ bytes: ArraySlice<UInt8>) throws -> [DecodedMessage] {
        var messages: [DecodedMessage] = []
        let failure: AudioSocketError? = Array(bytes).withUnsafeBytes { raw in
            do throws(AudioSocketError) {
                try reader.read(raw) { frame, payload in
                    messages.append(AudioSocketDecoderVerifier.copy(frame, payload: payload))
                    return true
                }
                return nil
            } catch {
                return error
            }
        }
        if let failure { throw failure }
        return messages
    }

    @Test func wholeFramesAreNeverCopied() throws {
        var reader = AudioSocketFrameReader()
        // One frame per read (how Asterisk sends), then three coalesced in one read.
        for _ in 0..<50 { #expect(try feed(&reader, Self.frame[...]).count == 1) }
        #expect(try feed(&reader, (Self.frame + Self.frame + Self.frame)[...]).count == 3)
        #expect(reader.copiedBytes == 0)
        #expect(reader.bufferedBytes == 0)
    }

    @Test func aSplitFrameIsCopiedOnceAndOnlyIt() throws {
        var reader = AudioSocketFrameReader()
        let stream = Self.frame + Self.frame + Self.frame  // 969 bytes
        // Reads of 400 + 569: the second frame straddles them.
        #expect(try feed(&reader, stream[..<400]).count == 1)
        #expect(reader.bufferedBytes == 400 - 323)
        #expect(try feed(&reader, stream[400...]).count == 2)
        #expect(reader.copiedBytes == 323)
        #expect(reader.bufferedBytes == 0)
    }

    @Test func aCallInArbitraryReadsDecodesTheSame() throws {
        let uuid: [UInt8] = [0x01, 0x00, 0x10] + (0..<16).map { UInt8($0) }
        let dtmf: [UInt8] = [0x03, 0x00, 0x01, 0x35]
        var stream = uuid
        for index in 0..<40 { stream += Self.frame; if index % 9 == 0 { stream += dtmf } }
        stream += [0x00, 0x00, 0x00]
        let expected = AudioSocketDecoderVerifier.decode(chunks: [stream[...]])
        #expect(expected.error == nil && expected.messages.count == 1 + 40 + 5 + 1)
        for size in [1, 2, 3, 7, 100, 322, 323, 324, 1000, 4096] {
            var reader = AudioSocketFrameReader()
            var messages: [DecodedMessage] = []
            var start = 0
            while start < stream.count {
                let end = min(stream.count, start + size)
                messages += try feed(&reader, stream[start..<end])
                start = end
            }
            #expect(messages == expected.messages, "reads of \(size) bytes")
            #expect(reader.bufferedBytes == 0)
        }
    }

    @Test func stoppingDropsTheRestOfTheRead() throws {
        var reader = AudioSocketFrameReader()
        let bytes = Self.frame + [0x00, 0x00, 0x00] + Self.frame
        var seen = 0
        let failure: AudioSocketError? = bytes.withUnsafeBytes { raw in
            do throws(AudioSocketError) {
                try reader.read(raw) { frame, _ in
                    seen += 1
                    return frame != .hangup
                }
                return nil
            } catch {
                return error
            }
        }
        #expect(failure == nil)
        #expect(seen == 2)
        #expect(reader.bufferedBytes == 0)
    }
}
