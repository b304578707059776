/// The ASR response body, turned into the user's turns.
///
/// ASR modules write bare UTF-8 text with no framing: each write is one final transcript,
/// and is itself the end of the utterance. Token-batch engines write one utterance as
/// several pieces a few hundred ms apart, so pieces closer together than the debounce form
/// one turn. Pieces are joined with a space when they arrived at different times (each one
/// was a separate write) and concatenated when they arrived within `sameWriteNanoseconds` or
/// a character was cut between them (one write cut by TCP).
///
/// A turn is cleaned before it is returned: control tokens are removed (`<` then an optional
/// `/` or `|`, 1–24 ASCII letters or `_`, an optional `|`, then `>`: `<end>`, `<fin>`,
/// `<eos>`, `</s>`, `<|endoftext|>`…; anything else in angle brackets, such as `<3` or
/// `a < b > c`, stays), runs of whitespace and control characters (newlines included) become
/// one space, and the
/// ends are trimmed; an empty turn is dropped.
///
/// A turn that is a JSON object with an `error` or `message` member (an error body written
/// into a 200 stream) is not a transcript: it is queued for `takeError()`. Call `takeError()`
/// after `takeTurn(at:)` and `finish()`.
///
/// Before a turn is ready, `tentative` is its text so far (cleaned the same way), so the
/// reply can be prepared while the debounce runs.
package struct ASRTranscriptAssembler: Sendable {
    package let debounceNanoseconds: UInt64
    /// Pieces this close together in time are one write cut by TCP: no space between them.
    package static let sameWriteNanoseconds: UInt64 = 5_000_000
    /// A turn longer than this is closed at once (bounded memory on a runaway stream).
    package static let maximumTurnBytes = 64 * 1024

    private var carry = UTF8Carry()
    private var pending = ""
    private var lastPieceAt: UInt64?
    private var turns: [String] = []
    private var errors: [String] = []

    package init(debounceNanoseconds: UInt64 = 300_000_000) {
        self.debounceNanoseconds = debounceNanoseconds
    }

    /// Bytes of the response body as they arrive (split anywhere, even inside a UTF-8 sequence).
    package mutating func append(_ bytes: UnsafeRawBufferPointer, at now: UInt64) {
        guard !bytes.isEmpty else { return }
        if let last = lastPieceAt, now >= last &+ debounceNanoseconds { closeTurn() }
        let midCharacter = carry.isHolding
        let text = carry.decode(bytes)
        if !text.isEmpty {
            if !pending.isEmpty, !midCharacter, let last = lastPieceAt, now >= last &+ Self.sameWriteNanoseconds {
                pending.append(" ")
            }
            pending.append(text)
        }
        lastPieceAt = now
        if pending.utf8.count >= Self.maximumTurnBytes { closeTurn() }
    }

    /// When a turn is ready (the debounce has passed since the last piece), returns it.
    package mutating func takeTurn(at now: UInt64) -> String? {
        if let last = lastPieceAt, now >= last &+ debounceNanoseconds { closeTurn() }
        return turns.isEmpty ? nil : turns.removeFirst()
    }

    /// The next error written into the stream (see the type's description), if any.
    package mutating func takeError() -> String? {
        errors.isEmpty ? nil : errors.removeFirst()
    }

    /// The cleaned text of the turn still within its debounce, or nil when there is none (or
    /// it begins with `{`: it may yet be an error body, see the type's description).
    package var tentative: String? {
        guard !pending.isEmpty else { return nil }
        let cleaned = Self.clean(pending)
        guard !cleaned.isEmpty, cleaned.utf8.first != UInt8(ascii: "{") else { return nil }
        return cleaned
    }

    /// When `takeTurn(at:)` will next have something to return (0 when a turn is already
    /// waiting), or nil when nothing is pending.
    package var deadline: UInt64? {
        if !turns.isEmpty { return 0 }
        guard let last = lastPieceAt, !pending.isEmpty else { return nil }
        return last &+ debounceNanoseconds
    }

    /// The response ended: returns the last turn, if any (and any further ready turn stays
    /// for `takeTurn`). An incomplete character at the very end decodes as U+FFFD.
    package mutating func finish() -> String? {
        pending.append(carry.finish())
        closeTurn()
        return turns.isEmpty ? nil : turns.removeFirst()
    }

    private mutating func closeTurn() {
        let raw = pending
        pending = ""
        lastPieceAt = nil
        if let error = Self.errorMessage(raw) {
            errors.append(error)
            return
        }
        let cleaned = Self.clean(raw)
        if !cleaned.isEmpty { turns.append(cleaned) }
    }

    /// The message of an error body written into the stream, or nil when `text` is not one.
    static func errorMessage(_ text: String) -> String? {
        let bytes = Array(text.utf8)
        guard let first = bytes.firstIndex(where: { !isASCIIWhitespace($0) }), let last = bytes.lastIndex(where: { !isASCIIWhitespace($0) }),
            bytes[first] == UInt8(ascii: "{"), bytes[last] == UInt8(ascii: "}")
        else { return nil }
        guard let value = try? JSONValue.parse(bytes[first...last]), let object = value.objectValue else {
            return nil
        }
        for key in ["error", "message"] {
            guard let member = object[key] else { continue }
            if let text = member.stringValue { return text }
            if let nested = member["message"]?.stringValue { return nested }
            return member.serialized()
        }
        if object["type"]?.stringValue == "error" {
            return object["content"]?.stringValue ?? value.serialized()
        }
        return nil
    }

    /// Control tokens removed, whitespace runs collapsed to one space, ends trimmed.
    static func clean(_ text: String) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count)
        let bytes = Array(text.utf8)
        var index = 0
        var spacePending = false
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "<"), let length = controlTokenLength(bytes, at: index) {
                index += length
                spacePending = true
                continue
            }
            if byte <= 0x20 || byte == 0x7F {  // space, whitespace and other control characters
                spacePending = true
                index += 1
                continue
            }
            if spacePending, !out.isEmpty { out.append(UInt8(ascii: " ")) }
            spacePending = false
            out.append(byte)
            index += 1
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The length of the control token starting at `start` (a `<`), or nil if there is none.
    static func controlTokenLength(_ bytes: [UInt8], at start: Int) -> Int? {
        var index = start + 1
        if index < bytes.count, bytes[index] == UInt8(ascii: "/") || bytes[index] == UInt8(ascii: "|") { index += 1 }
        let nameStart = index
        while index < bytes.count, index - nameStart < 25 {
            let byte = bytes[index]
            let isName = (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z"))
                || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z")) || byte == UInt8(ascii: "_")
            if !isName { break }
            index += 1
        }
        let nameLength = index - nameStart
        guard nameLength >= 1, nameLength <= 24 else { return nil }
        if index < bytes.count, bytes[index] == UInt8(ascii: "|") { index += 1 }
        guard index < bytes.count, bytes[index] == UInt8(ascii: ">") else { return nil }
        return index + 1 - start
    }
}

@inline(__always)
func isASCIIWhitespace(_ byte: UInt8) -> Bool {
    byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 || byte == 0x0B || byte == 0x0C
}
