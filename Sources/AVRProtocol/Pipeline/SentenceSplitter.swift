/// The LLM's reply text, cut into sentences for TTS.
///
/// Fed the reply as it streams (pieces cut anywhere); every rule works scalar by scalar with
/// its own small lookahead, so the sentences do not depend on how the reply was cut.
/// - `<think>…</think>` sections are dropped, tags split across pieces included; an
///   unterminated section is dropped up to the end of the reply.
/// - Citation brackets `【…】` are dropped with their contents.
/// - Markdown marks (`*`, `_`, `#`, `` ` ``) and list markers at a line start (`- `, `+ `,
///   `• `, `> `, `1. `, `2) `) are removed; emoji are removed; line breaks become spaces and
///   whitespace runs one space.
/// - A sentence ends at `.`, `!` or `?` (with any closing quotes or brackets after it) that is
///   followed by whitespace, except after common abbreviations (`Dr.`, `Mr.`, `e.g.`, `i.e.`,
///   `vs.`…), single-letter initials (`J. Smith`) and an ellipsis (`...`, `…`); inside a number
///   (`3.14`, `1,000.50`) no whitespace follows, so no cut. CJK `。！？` end a sentence at once.
///   A sentence longer than `maximumSentenceScalars` is cut at the next whitespace, and at
///   4 × that length even without whitespace (so memory stays bounded).
/// - `finish()` flushes the rest. A sentence without a letter or digit is never returned.
package struct SentenceSplitter: Sendable {
    package static let maximumSentenceScalars = 400

    private var tags = TagFilter()
    private var cleaner = MarkdownCleaner()
    private var sentences = SentenceAccumulator()

    package init() {}

    package mutating func append(_ text: String) -> [String] {
        withStages { tags, cleaner, sentences in
            for scalar in text.unicodeScalars {
                tags.process(scalar) { kept in cleaner.process(kept) { sentences.add($0) } }
            }
        }
        return sentences.takeOutput()
    }

    package mutating func finish() -> [String] {
        withStages { tags, cleaner, sentences in
            tags.finish { kept in cleaner.process(kept) { sentences.add($0) } }
            cleaner.finish { sentences.add($0) }
            sentences.finish()
        }
        let output = sentences.takeOutput()
        self = SentenceSplitter()
        return output
    }

    /// Runs `body` on the three stages moved out of `self` (swapped, not copied, so their
    /// buffers are not duplicated), then puts them back.
    private mutating func withStages(_ body: (inout TagFilter, inout MarkdownCleaner, inout SentenceAccumulator) -> Void) {
        var tags = TagFilter(), cleaner = MarkdownCleaner(), sentences = SentenceAccumulator()
        swap(&tags, &self.tags)
        swap(&cleaner, &self.cleaner)
        swap(&sentences, &self.sentences)
        body(&tags, &cleaner, &sentences)
        swap(&tags, &self.tags)
        swap(&cleaner, &self.cleaner)
        swap(&sentences, &self.sentences)
    }
}

// MARK: - Think sections and citation brackets

private let openThink = Array("<think>".unicodeScalars)
private let closeThink = Array("</think>".unicodeScalars)

struct TagFilter: Sendable {
    private var inThink = false
    private var inCitation = false
    /// A partial `<think>` (outside) or `</think>` (inside) seen so far.
    private var partial: [Unicode.Scalar] = []

    mutating func process(_ scalar: Unicode.Scalar, _ emit: (Unicode.Scalar) -> Void) {
        if inThink {
            partial.append(scalar)
            if closeThink.starts(with: partial) {
                if partial.count == closeThink.count {
                    inThink = false
                    partial.removeAll()
                }
            } else {
                partial = scalar == "<" ? [scalar] : []
            }
            return
        }
        guard !partial.isEmpty || scalar == "<" else {
            passCitations(scalar, emit)
            return
        }
        partial.append(scalar)
        if openThink.starts(with: partial) {
            if partial.count == openThink.count {
                inThink = true
                partial.removeAll()
            }
            return
        }
        // Not a think tag: the `<` goes on, the rest is looked at again.
        let held = partial
        partial.removeAll()
        passCitations(held[0], emit)
        for scalar in held.dropFirst() { process(scalar, emit) }
    }

    private mutating func passCitations(_ scalar: Unicode.Scalar, _ emit: (Unicode.Scalar) -> Void) {
        if inCitation {
            if scalar == "】" { inCitation = false }
        } else if scalar == "【" {
            inCitation = true
        } else {
            emit(scalar)
        }
    }

    mutating func finish(_ emit: (Unicode.Scalar) -> Void) {
        if !inThink {
            let held = partial
            partial.removeAll()
            for scalar in held { passCitations(scalar, emit) }
        }
        self = TagFilter()
    }
}

// MARK: - Markdown, emoji, line breaks

struct MarkdownCleaner: Sendable {
    private enum Marker: Sendable { case leading, bullet, digits(Int), numberEnd }
    private var atLineStart = true
    private var marker = Marker.leading
    /// What may be a list marker at the start of a line.
    private var held: [Unicode.Scalar] = []

    mutating func process(_ scalar: Unicode.Scalar, _ emit: (Unicode.Scalar) -> Void) {
        if isLineBreak(scalar) {
            flushHeld(emit)
            emit(" ")
            atLineStart = true
            marker = .leading
            return
        }
        guard atLineStart else {
            ordinary(scalar, emit)
            return
        }
        switch marker {
        case .leading:
            if scalar == " " || scalar == "\t" {
                // Whitespace collapses later anyway: a few held are as good as many (bounded).
                if held.count < 4 { held.append(scalar) }
            } else if scalar == "-" || scalar == "+" || scalar == "•" || scalar == "◦" || scalar == "▪" || scalar == ">" {
                held.append(scalar)
                marker = .bullet
            } else if isDigit(scalar) {
                held.append(scalar)
                marker = .digits(1)
            } else if isMarkdownMark(scalar) || isEmoji(scalar) {
                // `## Title`, `**Bold**`, `* item`: dropped anyway; still at the line start.
            } else {
                endLineStart(then: scalar, emit)
            }
        case .bullet:
            if scalar == " " || scalar == "\t" {
                dropMarker(emit)
            } else {
                endLineStart(then: scalar, emit)
            }
        case .digits(let count):
            if isDigit(scalar) && count < 3 {
                held.append(scalar)
                marker = .digits(count + 1)
            } else if scalar == "." || scalar == ")" {
                held.append(scalar)
                marker = .numberEnd
            } else {
                endLineStart(then: scalar, emit)
            }
        case .numberEnd:
            if scalar == " " || scalar == "\t" {
                dropMarker(emit)
            } else {
                endLineStart(then: scalar, emit)
            }
        }
    }

    mutating func finish(_ emit: (Unicode.Scalar) -> Void) {
        flushHeld(emit)
        self = MarkdownCleaner()
    }

    private mutating func dropMarker(_ emit: (Unicode.Scalar) -> Void) {
        held.removeAll()
        emit(" ")
        atLineStart = false
    }

    private mutating func endLineStart(then scalar: Unicode.Scalar, _ emit: (Unicode.Scalar) -> Void) {
        flushHeld(emit)
        ordinary(scalar, emit)
    }

    private mutating func flushHeld(_ emit: (Unicode.Scalar) -> Void) {
        atLineStart = false
        let scalars = held
        held.removeAll()
        for scalar in scalars { ordinary(scalar, emit) }
    }

    private func ordinary(_ scalar: Unicode.Scalar, _ emit: (Unicode.Scalar) -> Void) {
        if isMarkdownMark(scalar) || isEmoji(scalar) { return }
        emit(scalar == "\t" ? " " : scalar)
    }

    private func isLineBreak(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x0A, 0x0D, 0x0B, 0x0C, 0x85, 0x2028, 0x2029: true
        default: false
        }
    }

    private func isDigit(_ scalar: Unicode.Scalar) -> Bool { scalar >= "0" && scalar <= "9" }

    private func isMarkdownMark(_ scalar: Unicode.Scalar) -> Bool {
        scalar == "*" || scalar == "_" || scalar == "#" || scalar == "`"
    }

    /// Emoji and the invisible parts of emoji sequences (joiner, variation selectors, skin
    /// tones, keycap, tags). Symbols TTS reads as words (©, ®, ™, digits) stay.
    private func isEmoji(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x1F000...0x1FAFF, 0x2600...0x27BF, 0x2B00...0x2BFF, 0x2300...0x23FF, 0x1FC00...0x1FFFD,
            0xFE0E, 0xFE0F, 0x200D, 0x20E3, 0xE0020...0xE007F:
            true
        default: false
        }
    }
}

// MARK: - Sentences

private let abbreviations: Set<String> = [
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "mt", "vs", "approx", "fig", "dept", "gen",
    "lt", "col", "sgt", "capt", "rev", "hon", "cf", "al", "ca",
]

struct SentenceAccumulator: Sendable {
    private var current: [Unicode.Scalar] = []
    private var spacePending = false
    /// The last non-space scalars were `.`, `!`, `?` or `…` (and maybe closing quotes).
    private var afterTerminator = false
    private var output: [String] = []

    mutating func add(_ scalar: Unicode.Scalar) {
        if scalar == " " || scalar == "\u{A0}" || scalar == "\u{3000}" {
            if afterTerminator {
                afterTerminator = false
                if shouldCut() {
                    emit()
                    return
                }
            }
            if current.count >= SentenceSplitter.maximumSentenceScalars {
                emit()
                return
            }
            if !current.isEmpty { spacePending = true }
            return
        }
        if spacePending {
            current.append(" ")
            spacePending = false
        }
        current.append(scalar)
        if current.count >= 4 * SentenceSplitter.maximumSentenceScalars {
            // No whitespace for this long: cut anyway (bounded memory).
            emit()
            return
        }
        switch scalar {
        case ".", "!", "?", "…":
            afterTerminator = true
        case "\"", "'", "”", "’", ")", "]", "»":
            break  // closing marks keep a terminator before them
        case "。", "！", "？":
            emit()
        default:
            afterTerminator = false
        }
    }

    mutating func finish() {
        emit()
    }

    mutating func takeOutput() -> [String] {
        defer { output.removeAll() }
        return output
    }

    private mutating func emit() {
        defer {
            current.removeAll(keepingCapacity: true)
            spacePending = false
            afterTerminator = false
        }
        guard current.contains(where: { $0.properties.isAlphabetic || $0.properties.numericType != nil }) else { return }
        var text = String.UnicodeScalarView()
        text.append(contentsOf: current)
        output.append(String(text))
    }

    /// A terminator run followed by whitespace: is it the end of a sentence?
    private func shouldCut() -> Bool {
        var end = current.count
        while end > 0, "\"'”’)]»".unicodeScalars.contains(current[end - 1]) { end -= 1 }
        var start = end
        while start > 0, ".!?…".unicodeScalars.contains(current[start - 1]) { start -= 1 }
        let run = current[start..<end]
        if run.contains("!") || run.contains("?") { return true }
        if run.contains("…") || run.count > 1 { return false }  // an ellipsis
        // One `.`: the word before it.
        var wordStart = start
        while wordStart > 0, current[wordStart - 1] != " " { wordStart -= 1 }
        var word = current[wordStart..<start]
        while let first = word.first, "(\"'“‘[«".unicodeScalars.contains(first) { word = word.dropFirst() }
        guard !word.isEmpty else { return true }
        if word.count == 1, let letter = word.first, letter.properties.isUppercase { return false }  // an initial
        let lowered = String(String.UnicodeScalarView(word)).lowercased()
        if abbreviations.contains(lowered) { return false }
        // `e.g`, `i.e`, `U.S`: single letters between dots.
        if word.contains(".") {
            let parts = lowered.split(separator: ".", omittingEmptySubsequences: false)
            if parts.allSatisfy({ $0.count == 1 }) { return false }
        }
        return true
    }
}
