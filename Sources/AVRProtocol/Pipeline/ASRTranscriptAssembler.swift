// STAND-IN (backend branch): the real assembler comes from the "parsers" branch at merge.
// Only the contract's API; minimal behaviour so the backend can run end to end.

/// ASR response body: bare UTF-8 text chunks; each chunk is a final transcript.
public struct ASRTranscriptAssembler: Sendable {
    private let debounce: UInt64
    private var pending: [UInt8] = []
    private var lastChunk: UInt64?

    public init(debounceNanoseconds: UInt64 = 300_000_000) { debounce = debounceNanoseconds }

    public mutating func append(_ bytes: UnsafeRawBufferPointer, at now: UInt64) {
        pending.append(contentsOf: bytes)
        lastChunk = now
    }

    public mutating func takeTurn(at now: UInt64) -> String? {
        guard let deadline, now >= deadline else { return nil }
        return finish()
    }

    public var deadline: UInt64? { lastChunk.map { $0 &+ debounce } }

    public mutating func finish() -> String? {
        var bytes = pending
        pending = []
        lastChunk = nil
        for token in [Array("<end>".utf8), Array("<fin>".utf8)] {
            var index = 0
            while index + token.count <= bytes.count {
                if Array(bytes[index..<(index + token.count)]) == token {
                    bytes.removeSubrange(index..<(index + token.count))
                } else {
                    index += 1
                }
            }
        }
        let text = String(decoding: bytes, as: UTF8.self)
        let trimmed = text.split(whereSeparator: { $0.isWhitespace }).joined(separator: " ")
        return trimmed.isEmpty ? nil : trimmed
    }
}
