/// A call's route as stored in the shared registry (the Redis value):
/// `{"v":1,"payload":{...},"sts_url":"..."|null,"override":true|false}`. The payload keeps
/// its member order (its fields become the STS URL's query in that order).
package struct RouteRecord: Sendable, Equatable {
    package var payload: JSONObject
    /// The effective STS URL (payload appended), or nil when no STS is configured.
    package var stsURL: String?
    /// True when the `call_initiated` webhook chose the base URL.
    package var overridden: Bool

    package init(payload: JSONObject, stsURL: String?, overridden: Bool) {
        self.payload = payload
        self.stsURL = stsURL
        self.overridden = overridden
    }

    package func encoded() -> [UInt8] {
        var bytes = Array(#"{"v":1,"payload":"#.utf8)
        JSONValue.object(payload).serialize(into: &bytes)
        bytes.append(contentsOf: #","sts_url":"#.utf8)
        if let stsURL { JSONValue.appendQuoted(stsURL, to: &bytes) } else { bytes.append(contentsOf: "null".utf8) }
        bytes.append(contentsOf: #","override":"#.utf8)
        bytes.append(contentsOf: (overridden ? "true" : "false").utf8)
        bytes.append(UInt8(ascii: "}"))
        return bytes
    }

    package struct DecodeError: Error, Sendable, Equatable, CustomStringConvertible {
        package let reason: String
        package var description: String { reason }
    }

    /// Reads a stored record; anything else (another writer, another version) is an error.
    package static func decode(_ bytes: some Collection<UInt8>) throws(DecodeError) -> RouteRecord {
        let value: JSONValue
        do { value = try JSONValue.parse(bytes) } catch { throw DecodeError(reason: "\(error)") }
        guard let object = value.objectValue else { throw DecodeError(reason: "not a JSON object") }
        guard object["v"] == .number("1") else { throw DecodeError(reason: "unknown record version") }
        guard let payload = object["payload"]?.objectValue else { throw DecodeError(reason: "payload: not an object") }
        let stsURL: String?
        switch object["sts_url"] {
        case .string(let text)?: stsURL = text
        case .null?: stsURL = nil
        default: throw DecodeError(reason: "sts_url: not a string or null")
        }
        guard let overridden = object["override"]?.boolValue else { throw DecodeError(reason: "override: not a boolean") }
        return RouteRecord(payload: payload, stsURL: stsURL, overridden: overridden)
    }
}
