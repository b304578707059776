/// Keeps credentials that URLs carry out of log lines.
///
/// An STS URL built by `POST /call` holds the call's payload in its query, and operators put
/// API keys and tokens in query parameters (`?token=...`) or before an `@`
/// (`https://user:key@host/`); a webhook's `sts_url` or a module URL can do the same. Any of
/// them can end up in a log line, so the log handler passes every message and field through
/// `redact(in:)`, whatever the call site: what looks like `scheme://...` has
///
/// - its userinfo replaced by `***` (`:***` when it started with `:`, as a Redis password does);
/// - every query value replaced by `***`, names kept (`?from=***&token=***`); a parameter
///   without `=` becomes `***`;
/// - its fragment replaced by `***`.
///
/// Scheme, host, port and path stay as they are: they say which endpoint it was. A URL runs up
/// to a space, a control character, a quote, `<`, `>`, `` ` `` or a comma that starts the next URL of a
/// list (`ws://a/?t=1,ws://b/`); up to two trailing
/// `.`, `,`, `;`, `:` or `)` are taken as punctuation of the sentence and kept. Redacting
/// twice gives the same text. Text without `://` is returned as it is, without a copy.
package enum URLRedactor {
    /// The replacement of a secret.
    package static let mask = "***"

    /// `text` with the credentials of every URL in it masked.
    package static func redact(in text: String) -> String {
        var text = text
        return text.withUTF8 { utf8 -> String? in
            guard let first = firstURLStart(utf8, from: 0) else { return nil }
            var output: [UInt8] = []
            output.reserveCapacity(utf8.count + 16)
            var copied = 0
            var start: URLStart? = first
            while let urlStart = start {
                output.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[copied..<urlStart.scheme]))
                let end = appendRedacted(utf8, from: urlStart, to: &output)
                copied = end
                start = firstURLStart(utf8, from: end)
            }
            output.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[copied...]))
            return String(decoding: output, as: UTF8.self)
        } ?? text
    }

    /// Byte form of `redact(in:)`.
    package static func redact(_ bytes: [UInt8]) -> [UInt8] {
        Array(redact(in: String(decoding: bytes, as: UTF8.self)).utf8)
    }

    private struct URLStart {
        /// First byte of the scheme.
        let scheme: Int
        /// First byte after `://`.
        let authority: Int
    }

    /// The next `scheme://` at or after `from`.
    private static func firstURLStart(_ utf8: UnsafeBufferPointer<UInt8>, from: Int) -> URLStart? {
        var index = from
        while index + 2 < utf8.count {
            if utf8[index] == UInt8(ascii: ":"), utf8[index + 1] == UInt8(ascii: "/"), utf8[index + 2] == UInt8(ascii: "/") {
                var schemeStart = index
                while schemeStart > from, isSchemeByte(utf8[schemeStart - 1]) { schemeStart -= 1 }
                // RFC 3986: a scheme starts with a letter.
                while schemeStart < index, !isLetter(utf8[schemeStart]) { schemeStart += 1 }
                if schemeStart < index { return URLStart(scheme: schemeStart, authority: index + 3) }
            }
            index += 1
        }
        return nil
    }

    /// Appends the URL starting at `start`, redacted; returns the index just after it.
    private static func appendRedacted(_ utf8: UnsafeBufferPointer<UInt8>, from start: URLStart,
                                       to output: inout [UInt8]) -> Int {
        var end = start.authority
        while end < utf8.count, !endsURL(utf8[end]), !startsNextURLOfAList(utf8, at: end) { end += 1 }
        // Punctuation of the surrounding sentence, not of the URL.
        var trailing = end
        while trailing > start.authority, end - trailing < 2, isTrailingPunctuation(utf8[trailing - 1]) { trailing -= 1 }
        output.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[start.scheme..<start.authority]))
        var index = start.authority
        let authorityEnd = (index..<trailing).first { isAuthorityEnd(utf8[$0]) } ?? trailing
        if let at = (index..<authorityEnd).last(where: { utf8[$0] == UInt8(ascii: "@") }) {
            if utf8[index] == UInt8(ascii: ":") { output.append(UInt8(ascii: ":")) }
            output.append(contentsOf: mask.utf8)
            index = at
        }
        let queryStart = (index..<trailing).first { utf8[$0] == UInt8(ascii: "?") || utf8[$0] == UInt8(ascii: "#") } ?? trailing
        output.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[index..<queryStart]))
        index = queryStart
        if index < trailing, utf8[index] == UInt8(ascii: "?") {
            output.append(UInt8(ascii: "?"))
            index += 1
            let queryEnd = (index..<trailing).first { utf8[$0] == UInt8(ascii: "#") } ?? trailing
            var parameterStart = index
            while parameterStart <= queryEnd {
                let parameterEnd = (parameterStart..<queryEnd).first {
                    utf8[$0] == UInt8(ascii: "&") || utf8[$0] == UInt8(ascii: ";")
                } ?? queryEnd
                if parameterEnd > parameterStart {
                    if let equals = (parameterStart..<parameterEnd).first(where: { utf8[$0] == UInt8(ascii: "=") }) {
                        output.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[parameterStart...equals]))
                        if equals + 1 < parameterEnd { output.append(contentsOf: mask.utf8) }
                    } else {
                        output.append(contentsOf: mask.utf8)
                    }
                }
                if parameterEnd < queryEnd { output.append(utf8[parameterEnd]) }
                parameterStart = parameterEnd + 1
            }
            index = queryEnd
        }
        if index < trailing, utf8[index] == UInt8(ascii: "#") {
            output.append(UInt8(ascii: "#"))
            output.append(contentsOf: mask.utf8)
        }
        // Punctuation kept out of the URL follows it as it was.
        output.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[trailing..<end]))
        return end
    }

    /// A `,` followed by `scheme://` separates two URLs of a list (`STS_URL=ws://a/?t=1,ws://b/`);
    /// any other comma is part of the URL.
    private static func startsNextURLOfAList(_ utf8: UnsafeBufferPointer<UInt8>, at index: Int) -> Bool {
        guard utf8[index] == UInt8(ascii: ","), index + 1 < utf8.count, isLetter(utf8[index + 1]) else { return false }
        var cursor = index + 1
        while cursor < utf8.count, isSchemeByte(utf8[cursor]) { cursor += 1 }
        return cursor + 2 < utf8.count && utf8[cursor] == UInt8(ascii: ":") && utf8[cursor + 1] == UInt8(ascii: "/")
            && utf8[cursor + 2] == UInt8(ascii: "/")
    }

    private static func isLetter(_ byte: UInt8) -> Bool {
        (byte | 0x20) >= UInt8(ascii: "a") && (byte | 0x20) <= UInt8(ascii: "z")
    }

    private static func isSchemeByte(_ byte: UInt8) -> Bool {
        isLetter(byte) || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
            || byte == UInt8(ascii: "+") || byte == UInt8(ascii: "-") || byte == UInt8(ascii: ".")
    }

    private static func endsURL(_ byte: UInt8) -> Bool {
        switch byte {
        case 0...0x20, 0x7F, UInt8(ascii: "\""), UInt8(ascii: "'"), UInt8(ascii: "<"), UInt8(ascii: ">"),
             UInt8(ascii: "`"):
            true
        default:
            false
        }
    }

    private static func isAuthorityEnd(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: "/") || byte == UInt8(ascii: "?") || byte == UInt8(ascii: "#")
    }

    private static func isTrailingPunctuation(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: ".") || byte == UInt8(ascii: ",") || byte == UInt8(ascii: ";")
            || byte == UInt8(ascii: ":") || byte == UInt8(ascii: ")")
    }
}
