import Testing
@testable import AVRProtocol

/// A deterministic generator so "random" test data is the same on every run.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

extension Array where Element == UInt8 {
    init(hex: String) {
        let digits = hex.filter { !$0.isWhitespace }.map { UInt8(String($0), radix: 16)! }
        self = stride(from: 0, to: digits.count, by: 2).map { digits[$0] << 4 | digits[$0 + 1] }
    }

    var hex: String {
        map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined(separator: " ")
    }

    static func random(count: Int, using generator: inout SplitMix64) -> [UInt8] {
        (0..<count).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
    }
}

/// The ways a decoder's input can be cut by TCP: whole, byte by byte, and in two pieces split
/// at each index in `splitIndices` (all of them by default).
func chunkings(of bytes: [UInt8], splitIndices: [Int]? = nil) -> [(label: String, chunks: [[UInt8]])] {
    var result: [(String, [[UInt8]])] = [("whole", [bytes])]
    result.append(("byte by byte", bytes.map { [$0] }))
    for index in splitIndices ?? Array(0...bytes.count) {
        result.append(("split at \(index)", [Array(bytes[..<index]), Array(bytes[index...])]))
    }
    return result
}

/// What the frame decoder produced for a stream: owned copies of every frame, the error that
/// stopped it if any, and how many bytes remained unconsumed.
struct FrameDecodeOutcome: Equatable, CustomStringConvertible {
    var frames: [Frame] = []
    var error: WebSocketError?
    /// Unconsumed bytes at the end (0 when decoding failed).
    var leftover = 0

    struct Frame: Equatable {
        var fin: Bool
        var opcode: WebSocketOpcode
        var payload: [UInt8]
    }

    var description: String {
        "frames: \(frames.map { "(\($0.fin ? "fin" : "more") \($0.opcode) \($0.payload.count)B)" }), error: \(String(describing: error)), leftover: \(leftover)"
    }
}

func decodeFrames(_ chunks: [[UInt8]], maxFrameSize: Int = WebSocketFrameDecoder.defaultMaxFrameSize) -> FrameDecodeOutcome {
    var decoder = WebSocketFrameDecoder(maxFrameSize: maxFrameSize)
    var buffer = ByteBuffer()
    var outcome = FrameDecodeOutcome()
    do {
        for chunk in chunks {
            buffer.append(contentsOf: chunk)
            while let frame = try decoder.decode(&buffer) {
                #expect(frame.header.maskingKey == nil)
                #expect(frame.header.payloadLength == frame.payloadRange.count)
                outcome.frames.append(.init(
                    fin: frame.header.fin, opcode: frame.header.opcode,
                    payload: Array(buffer.storage[frame.payloadRange])))
            }
        }
    } catch {
        outcome.error = error
    }
    // After an error, how much was fed depends on the chunking; only count leftovers on success.
    outcome.leftover = outcome.error == nil ? buffer.readableBytes : 0
    return outcome
}

/// Owned copies of what a `WebSocketMessageReader` delivered.
enum ReceivedEvent: Equatable {
    case text(String)
    case binary([UInt8])
    case ping([UInt8])
    case pong([UInt8])
    case close(UInt16?, String)
    case failed(WebSocketError)
}

/// The same through `WebSocketFrameReader`, each chunk read in place as a socket read would
/// be; `leftover` is what the reader had to keep of an incomplete frame.
func readFramesInPlace(_ chunks: [[UInt8]], maxFrameSize: Int = WebSocketFrameDecoder.defaultMaxFrameSize) -> FrameDecodeOutcome {
    var reader = WebSocketFrameReader(maxFrameSize: maxFrameSize)
    var outcome = FrameDecodeOutcome()
    do {
        for chunk in chunks {
            try chunk.withUnsafeBytes { bytes in
                try reader.read(bytes) { frame, payload in
                    #expect(frame.maskingKey == nil)
                    #expect(frame.payloadLength == payload.count)
                    outcome.frames.append(.init(fin: frame.fin, opcode: frame.opcode, payload: Array(payload)))
                    return true
                }
            }
        }
    } catch {
        outcome.error = error as? WebSocketError
    }
    outcome.leftover = outcome.error == nil ? reader.bufferedBytes : 0
    return outcome
}

/// `inPlace`: each chunk is read where it lies (`read(_: UnsafeRawBufferPointer)`), else
/// through a `ByteBuffer`.
func readMessages(_ chunks: [[UInt8]], maxMessageSize: Int = WebSocketMessageAssembler.defaultMaxMessageSize,
                  inPlace: Bool = false) -> [ReceivedEvent] {
    var reader = WebSocketMessageReader(maxMessageSize: maxMessageSize)
    var buffer = ByteBuffer()
    var events: [ReceivedEvent] = []
    do {
        for chunk in chunks {
            let deliver: (WebSocketEvent) -> Void = { event in
                switch event {
                case .text(let bytes): events.append(.text(String(decoding: bytes, as: UTF8.self)))
                case .binary(let bytes): events.append(.binary(Array(bytes)))
                case .ping(let bytes): events.append(.ping(Array(bytes)))
                case .pong(let bytes): events.append(.pong(Array(bytes)))
                case .close(let code, let reason):
                    events.append(.close(code?.rawValue, String(decoding: reason, as: UTF8.self)))
                }
            }
            if inPlace {
                try chunk.withUnsafeBytes { bytes in try reader.read(bytes, deliver: deliver) }
            } else {
                buffer.append(contentsOf: chunk)
                try reader.read(&buffer, deliver: deliver)
            }
        }
    } catch {
        events.append(.failed(error as! WebSocketError))
    }
    return events
}
