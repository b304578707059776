/// Builds the URL a call's STS connection uses: the base (`STS_URL`, or the `sts_url` a
/// webhook chose) with every `/call` payload field appended as a query parameter, in the
/// payload's order, so the STS service can read `from`, `to`, `uniqueid`, ... from its
/// request URL.
///
/// Rules (from the HTTP service issue): keys and values are percent-encoded
/// (`PercentEncoding`); strings go as they are, numbers and booleans as their JSON text,
/// `null` as an empty value, objects and arrays as compact JSON; a query already in the
/// base is kept and the parameters follow it after `&`; an empty path becomes `/`; a
/// fragment stays at the end. With an empty payload only the `/` normalisation applies.
///
/// Works on the text, not on a parsed URL, so that whatever the base spelled (case, escapes,
/// a webhook's own query) reaches the STS unchanged.
package enum EffectiveSTSURL {
    /// `ws://localhost:6030` + `{"from":"2000","channel":"PJSIP/2000-00000013"}` →
    /// `ws://localhost:6030/?from=2000&channel=PJSIP%2F2000-00000013`.
    package static func make(base: String, payload: JSONObject) -> String {
        var text = Array(base.utf8)
        // The fragment is set aside so the query lands before it.
        var fragment: ArraySlice<UInt8> = []
        if let hash = text.firstIndex(of: UInt8(ascii: "#")) {
            fragment = text[hash...]
            text.removeSubrange(hash...)
        }
        insertRootPathIfMissing(&text)

        if !payload.isEmpty {
            if let question = text.firstIndex(of: UInt8(ascii: "?")) {
                // Keep the base's query; `ws://h/?` or `ws://h/?a=1&` need no separator.
                if question != text.count - 1, text.last != UInt8(ascii: "&") { text.append(UInt8(ascii: "&")) }
            } else {
                text.append(UInt8(ascii: "?"))
            }
            for (position, member) in payload.members.enumerated() {
                if position > 0 { text.append(UInt8(ascii: "&")) }
                PercentEncoding.appendEncoded(member.key, to: &text)
                text.append(UInt8(ascii: "="))
                PercentEncoding.appendEncoded(queryText(of: member.value), to: &text)
            }
        }
        text.append(contentsOf: fragment)
        return String(decoding: text, as: UTF8.self)
    }

    /// The text a payload value stands for in the query, before percent-encoding.
    package static func queryText(of value: JSONValue) -> String {
        switch value {
        case .null: ""
        case .string(let text): text
        case .number(let text): text
        case .bool(let flag): flag ? "true" : "false"
        case .array, .object: value.serialized()
        }
    }

    /// `scheme://authority` with nothing after it (or only `?query`) gets the root path
    /// `/`, as WHATWG URL serialisation does for special schemes.
    private static func insertRootPathIfMissing(_ text: inout [UInt8]) {
        // Only a real `scheme://` prefix counts, not a `://` inside a query.
        guard let colon = text.firstIndex(of: UInt8(ascii: ":")), colon > 0,
            text[..<colon].allSatisfy(EndpointURL.isSchemeCharacter),
            text.count - colon >= 3, text[colon + 1] == UInt8(ascii: "/"), text[colon + 2] == UInt8(ascii: "/")
        else { return }
        let authorityStart = colon + 3
        let authorityEnd =
            text[authorityStart...].firstIndex(where: { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "?") })
            ?? text.count
        if authorityEnd == text.count || text[authorityEnd] == UInt8(ascii: "?") {
            text.insert(UInt8(ascii: "/"), at: authorityEnd)
        }
    }
}
