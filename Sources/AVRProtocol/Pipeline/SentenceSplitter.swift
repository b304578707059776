// STAND-IN (backend branch): the real splitter comes from the "parsers" branch at merge.
// Only the contract's API; minimal behaviour (cut after . ! ? followed by a space) so the
// backend can run end to end.

/// Text → sentences for TTS.
public struct SentenceSplitter: Sendable {
    private var pending: [Character] = []

    public init() {}

    public mutating func append(_ text: String) -> [String] {
        pending.append(contentsOf: text)
        var sentences: [String] = []
        var start = 0
        var index = 0
        while index + 1 < pending.count {
            if ".!?".contains(pending[index]) && pending[index + 1].isWhitespace {
                let sentence = Self.clean(pending[start...index])
                if !sentence.isEmpty { sentences.append(sentence) }
                start = index + 1
            }
            index += 1
        }
        pending.removeFirst(start)
        return sentences
    }

    public mutating func finish() -> [String] {
        let rest = Self.clean(pending[...])
        pending = []
        return rest.isEmpty ? [] : [rest]
    }

    private static func clean(_ characters: ArraySlice<Character>) -> String {
        String(characters).split(whereSeparator: { $0.isWhitespace }).joined(separator: " ")
    }
}
