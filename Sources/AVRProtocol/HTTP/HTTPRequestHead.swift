/// Writes an HTTP/1.1 request head: the request line, `Host` first, the given headers in
/// order, the blank line. The one writer behind every request avr-core sends (WebSocket
/// upgrade, streaming-HTTP STS, webhooks). Names and values are written as given: callers
/// pass values checked for control characters (configuration) or built by avr-core.
package enum HTTPRequestHead {
    package static func append(method: String, target: String, host: String,
                              headers: [(name: String, value: String)], to out: inout [UInt8]) {
        out.append(contentsOf: method.utf8)
        out.append(UInt8(ascii: " "))
        out.append(contentsOf: target.utf8)
        out.append(contentsOf: " HTTP/1.1\r\nHost: ".utf8)
        out.append(contentsOf: host.utf8)
        out.append(contentsOf: "\r\n".utf8)
        for header in headers {
            out.append(contentsOf: header.name.utf8)
            out.append(contentsOf: ": ".utf8)
            out.append(contentsOf: header.value.utf8)
            out.append(contentsOf: "\r\n".utf8)
        }
        out.append(contentsOf: "\r\n".utf8)
    }

    package static func make(method: String, target: String, host: String,
                            headers: [(name: String, value: String)]) -> [UInt8] {
        var out: [UInt8] = []
        append(method: method, target: target, host: host, headers: headers, to: &out)
        return out
    }
}
