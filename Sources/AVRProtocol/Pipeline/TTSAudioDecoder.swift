// STAND-IN (backend branch): the real decoder comes from the "parsers" branch at merge.
// Only the contract's API; minimal behaviour (raw PCM, odd bytes carried, a canonical
// 44-byte WAV header skipped) so the backend can run end to end.

public enum TTSAudioError: Error, Sendable, Equatable {
    case unsupportedFormat
}

/// TTS response body → 8 kHz s16le PCM.
public struct TTSAudioDecoder: Sendable {
    private var head: [UInt8] = []
    private var decided = false
    private var skip = 0
    private var carry: UInt8?
    private var even: [UInt8] = []

    public init() {}

    public mutating func append(_ bytes: UnsafeRawBufferPointer, _ emit: (UnsafeRawBufferPointer) -> Void) throws(TTSAudioError) {
        var input = Array(bytes)
        if !decided {
            head.append(contentsOf: input)
            guard head.count >= 4 else { return }
            if head[0..<4] == [0x52, 0x49, 0x46, 0x46] {
                guard head.count >= 44 else { return }
                skip = 44
            }
            decided = true
            input = Array(head[skip...])
            head = []
        }
        even.removeAll(keepingCapacity: true)
        if let carried = carry { even.append(carried); carry = nil }
        even.append(contentsOf: input)
        if even.count % 2 == 1 { carry = even.removeLast() }
        if !even.isEmpty { even.withUnsafeBytes { emit($0) } }
    }

    public mutating func finish() -> Int {
        defer { carry = nil }
        return carry == nil ? 0 : 1
    }
}
