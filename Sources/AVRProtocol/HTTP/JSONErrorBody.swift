/// The body of every error answer of the HTTP service, `{"error":"<message>"}`, so that a
/// dialplan's `CURL()` result always parses as JSON.
package enum JSONErrorBody {
    package static func make(_ message: String) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(message.utf8.count + 12)
        bytes.append(contentsOf: #"{"error":"#.utf8)
        JSONValue.appendQuoted(message, to: &bytes)
        bytes.append(UInt8(ascii: "}"))
        return bytes
    }
}
