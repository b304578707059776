import Testing
@testable import AVRProtocol

/// A decoded message with its audio payload copied out, so outcomes can be compared.
enum DecodedMessage: Equatable, CustomStringConvertible {
    case hangup
    case uuid(CallUUID)
    case dtmf(Character)
    case invalidDTMF(UInt8)
    case audio(AudioSocketKind, [UInt8])
    case error([UInt8])

    var description: String {
        switch self {
        case .hangup: "hangup"
        case .uuid(let uuid): "uuid(\(uuid))"
        case .dtmf(let digit): "dtmf(\(digit))"
        case .invalidDTMF(let byte): "invalidDTMF(\(byte))"
        case .audio(let kind, let payload): "audio(\(kind), \(payload.count) bytes)"
        case .error(let code): "error(\(code))"
        }
    }
}

struct DecodeOutcome: Equatable {
    var messages: [DecodedMessage] = []
    var error: AudioSocketError?
}

/// Feeds vectors to a fresh decoder the way TCP may deliver them, and checks that every
/// delivery gives the same messages and the same error.
enum AudioSocketDecoderVerifier {
    static func decode(chunks: [ArraySlice<UInt8>], maximumPayloadLength: Int = AudioSocketDecoder.defaultMaximumPayloadLength) -> DecodeOutcome {
        var decoder = AudioSocketDecoder(maximumPayloadLength: maximumPayloadLength)
        var buffer = ByteBuffer()
        var outcome = DecodeOutcome()
        for chunk in chunks {
            buffer.append(contentsOf: chunk)
            do {
                while let frame = try decoder.decode(&buffer) {
                    outcome.messages.append(copy(frame, from: buffer))
                }
            } catch {
                outcome.error = error
                return outcome
            }
        }
        return outcome
    }

    /// The same, through `AudioSocketFrameReader` (decoding in place from each read). Also
    /// checks that the reader never keeps more than one incomplete message.
    static func read(chunks: [ArraySlice<UInt8>], maximumPayloadLength: Int = AudioSocketDecoder.defaultMaximumPayloadLength) -> DecodeOutcome {
        var reader = AudioSocketFrameReader(maximumPayloadLength: maximumPayloadLength)
        var outcome = DecodeOutcome()
        for chunk in chunks {
            let failure: AudioSocketError? = Array(chunk).withUnsafeBytes { bytes in
                do throws(AudioSocketError) {
                    try reader.read(bytes) { frame, payload in
                        outcome.messages.append(copy(frame, payload: payload))
                        return true
                    }
                    return nil
                } catch {
                    return error
                }
            }
            if let failure {
                outcome.error = failure
                return outcome
            }
            #expect(reader.bufferedBytes < 3 + maximumPayloadLength, "more than one incomplete message kept")
        }
        return outcome
    }

    static func copy(_ frame: AudioSocketFrame, payload: UnsafeRawBufferPointer) -> DecodedMessage {
        switch frame {
        case .hangup: .hangup
        case .uuid(let uuid): .uuid(uuid)
        case .dtmf(let digit): .dtmf(digit.character)
        case .invalidDTMF(let byte): .invalidDTMF(byte)
        case .error(let code): .error(code)
        case .audio(let audio):
            .audio(audio.kind, payload.count == audio.payloadLength ? Array(payload) : [])
        }
    }

    static func copy(_ frame: AudioSocketFrame, from buffer: ByteBuffer) -> DecodedMessage {
        switch frame {
        case .hangup: .hangup
        case .uuid(let uuid): .uuid(uuid)
        case .dtmf(let digit): .dtmf(digit.character)
        case .invalidDTMF(let byte): .invalidDTMF(byte)
        case .error(let code): .error(code)
        case .audio(let audio): .audio(audio.kind, audio.withPayload(in: buffer) { Array($0) })
        }
    }

    /// Whole, byte by byte, and split in two at every index.
    static func verify(
        _ bytes: [UInt8], expect messages: [DecodedMessage], error: AudioSocketError? = nil,
        maximumPayloadLength: Int = AudioSocketDecoder.defaultMaximumPayloadLength,
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        let expected = DecodeOutcome(messages: messages, error: error)
        let whole = decode(chunks: [bytes[...]], maximumPayloadLength: maximumPayloadLength)
        #expect(whole == expected, "whole", sourceLocation: sourceLocation)
        let single = decode(chunks: bytes.indices.map { bytes[$0...$0] }, maximumPayloadLength: maximumPayloadLength)
        #expect(single == expected, "byte by byte", sourceLocation: sourceLocation)
        for split in 0...bytes.count {
            let outcome = decode(chunks: [bytes[..<split], bytes[split...]], maximumPayloadLength: maximumPayloadLength)
            #expect(outcome == expected, "split at \(split)", sourceLocation: sourceLocation)
            if outcome != expected { return }
        }
        // The in-place reader gives the same, whole, byte by byte and split at every index.
        #expect(read(chunks: [bytes[...]], maximumPayloadLength: maximumPayloadLength) == expected,
                "reader, whole", sourceLocation: sourceLocation)
        #expect(read(chunks: bytes.indices.map { bytes[$0...$0] }, maximumPayloadLength: maximumPayloadLength) == expected,
                "reader, byte by byte", sourceLocation: sourceLocation)
        for split in 0...bytes.count {
            let outcome = read(chunks: [bytes[..<split], bytes[split...]], maximumPayloadLength: maximumPayloadLength)
            #expect(outcome == expected, "reader, split at \(split)", sourceLocation: sourceLocation)
            if outcome != expected { return }
        }
    }
}
