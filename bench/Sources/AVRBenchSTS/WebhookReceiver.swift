import AVRBenchSupport
import AVRCore

/// Counts webhook events per type (`POST` anything) and answers `GET /stats` with those counts
/// and the STS server's, as one JSON object, for the bench driver.
final class WebhookReceiver {
    private let listener: TCPListener
    private(set) var counts: [String: Int] = [:]
    private(set) var requests = 0
    var statsJSON: () -> String = { "{}" }

    init(loop: EventLoop, port: Int) throws {
        listener = try TCPListener(loop: loop, host: "127.0.0.1", port: port)
        listener.onConnection = { [self] stream in serve(stream) }
    }

    var port: Int { listener.port }

    private func serve(_ stream: TCPStream) {
        var reader = HTTPMessageReader()
        stream.onRead = { [self] bytes in
            reader.append(bytes)
            while let message = try? reader.next() {
                if message.startLine.first == "GET" {
                    respond(stream, body: statsJSON())
                } else {
                    requests += 1
                    counts[eventType(message.body) ?? "unknown", default: 0] += 1
                    respond(stream, body: "{}")
                }
            }
        }
        stream.onEnd = { _ in stream.close() }
        stream.startReading()
    }

    private func respond(_ stream: TCPStream, body: String) {
        stream.write(Array("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)".utf8))
    }

    /// The value of the envelope's `"type":"..."` (the envelope is flat up to `payload`).
    private func eventType(_ body: [UInt8]) -> String? {
        let key = Array(#""type":""#.utf8)
        guard body.count > key.count else { return nil }
        for start in 0...(body.count - key.count) where body[start..<(start + key.count)].elementsEqual(key) {
            let valueStart = start + key.count
            guard let end = body[valueStart...].firstIndex(of: UInt8(ascii: "\"")) else { return nil }
            return String(decoding: body[valueStart..<end], as: UTF8.self)
        }
        return nil
    }

    func close() { listener.close() }
}
