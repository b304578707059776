/// The STS endpoints of `STS_URL` (or of a webhook's `sts_url`): one URL, or several for
/// failover, separated by whitespace or commas.
///
/// A comma separates only where the next endpoint's `scheme://` follows it (after optional
/// whitespace), so a comma inside an endpoint's own query (`?voices=a,b`) stays part of that
/// endpoint, as it did when `STS_URL` held exactly one URL. Whitespace never occurs inside a
/// URL (`EndpointURL` refuses it), so it always separates.
///
/// The order is the failover order: a call connects to the first, and on a failure tries the
/// next, round-robin (see `STSFailoverMachine`).
package enum STSEndpointList {
    /// More would be a mistake (and a webhook answer must not make a call try thousands).
    package static let maximumCount = 16

    /// Why a list was refused: the entry at fault (as written) and what is wrong with it.
    package struct ParseError: Error, Sendable, Equatable, CustomStringConvertible {
        package enum Reason: Sendable, Equatable {
            case invalidURL(EndpointURLError)
            case empty
            case tooMany(Int)
        }

        /// The offending entry, or the whole text for `empty` and `tooMany`.
        package let entry: String
        package let reason: Reason

        package var description: String {
            switch reason {
            case .invalidURL(let error): "\"\(entry)\" is not a valid URL: \(error)"
            case .empty: "no endpoint in \"\(entry)\""
            case .tooMany(let count): "\(count) endpoints; at most \(STSEndpointList.maximumCount)"
            }
        }
    }

    /// The entries as written, in order, before any URL check.
    package static func split(_ text: String) -> [String] {
        var entries: [String] = []
        for piece in text.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }) {
            var rest = Substring(piece)
            while let cut = nextSeparatingComma(in: rest) {
                let entry = rest[..<cut]
                if !entry.isEmpty { entries.append(String(entry)) }
                rest = rest[rest.index(after: cut)...]
            }
            if !rest.isEmpty {
                // A trailing comma (`ws://a/,`) or one before whitespace separates too.
                let trimmed = rest.last == "," ? rest.dropLast() : rest
                if !trimmed.isEmpty { entries.append(String(trimmed)) }
            }
        }
        return entries
    }

    /// Every entry parsed; the first bad one is the error.
    package static func parse(_ text: String) throws(ParseError) -> [EndpointURL] {
        let entries = split(text)
        guard !entries.isEmpty else { throw ParseError(entry: text, reason: .empty) }
        guard entries.count <= maximumCount else { throw ParseError(entry: text, reason: .tooMany(entries.count)) }
        var urls: [EndpointURL] = []
        urls.reserveCapacity(entries.count)
        for entry in entries {
            do throws(EndpointURLError) {
                urls.append(try EndpointURL.parse(entry))
            } catch {
                throw ParseError(entry: entry, reason: .invalidURL(error))
            }
        }
        return urls
    }

    /// The text a route carries: the entries joined by one space (the `/call` answer's
    /// `sts_url` shows it so).
    package static func join(_ entries: [String]) -> String {
        entries.joined(separator: " ")
    }

    /// The first comma in `text` that is followed by `scheme://`.
    private static func nextSeparatingComma(in text: Substring) -> Substring.Index? {
        var index = text.startIndex
        while let comma = text[index...].firstIndex(of: ",") {
            let after = text[text.index(after: comma)...]
            if startsWithScheme(after) { return comma }
            index = text.index(after: comma)
        }
        return nil
    }

    private static func startsWithScheme(_ text: Substring) -> Bool {
        let bytes = Array(text.utf8.prefix(16))
        guard let colon = bytes.firstIndex(of: UInt8(ascii: ":")), colon > 0,
            bytes[..<colon].allSatisfy(EndpointURL.isSchemeCharacter),
            bytes.count - colon >= 3, bytes[colon + 1] == UInt8(ascii: "/"), bytes[colon + 2] == UInt8(ascii: "/")
        else { return false }
        return true
    }
}

extension EndpointURL {
    /// The endpoint without secrets, for logs and webhooks that name it: no userinfo, no
    /// fragment, and the query's names without their values (`ws://sts:6030/?from=&to=`), so a
    /// token in the URL never leaves the process while the endpoint stays recognisable.
    package var redacted: String {
        var text = scheme.rawValue + "://" + hostHeader + (path.isEmpty ? "/" : path)
        if let query {
            text += "?"
            var first = true
            for pair in query.split(separator: "&", omittingEmptySubsequences: true) {
                if !first { text += "&" }
                first = false
                let name = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
                text += name + "="
            }
        }
        return text
    }
}
