import AVRBenchSupport
import AVRCore

/// Counts webhook events per type (`POST` anything) and answers `GET /stats` with those counts
/// and the STS server's, as one JSON object, for the bench driver.
///
/// For the soak: `GET /events` lists, per call uuid, how many `call_started` and `call_ended`
/// were delivered; `POST /control/stall` makes it stop answering webhooks (requests are read
/// and held, unanswered) until `POST /control/resume`. An event counts as delivered when it
/// is answered: a held request whose connection the server closed meanwhile (its timeout) is
/// dropped uncounted — the server has seen a failure and may retry.
final class WebhookReceiver {
    private final class Connection {
        let stream: TCPStream
        var reader = HTTPMessageReader()
        var open = true
        init(stream: TCPStream) { self.stream = stream }
    }

    private struct Held {
        let connection: Connection
        let type: String
        let uuid: String
        let body: [UInt8]
    }

    /// Per call uuid: `call_started` and `call_ended` deliveries, and the distinct `call_ended`
    /// events among them (a retry after a timed-out attempt re-sends the same body, timestamp
    /// included: a redelivery, not a second event).
    private struct Lifecycle {
        var started = 0
        var ended = 0
        var endedBodies: Set<[UInt8]> = []
    }

    private let listener: TCPListener
    private(set) var counts: [String: Int] = [:]
    private(set) var requests = 0
    private(set) var abandoned = 0
    private(set) var stalls = 0
    private var stalled = false
    private var held: [Held] = []
    private var lifecycle: [String: Lifecycle] = [:]
    var statsJSON: () -> String = { "{}" }

    init(loop: EventLoop, port: Int) throws {
        listener = try TCPListener(loop: loop, host: "127.0.0.1", port: port)
        listener.onConnection = { [self] stream in serve(stream) }
    }

    var port: Int { listener.port }
    var heldCount: Int { held.count }

    private func serve(_ stream: TCPStream) {
        let connection = Connection(stream: stream)
        stream.onRead = { [self] bytes in
            connection.reader.append(bytes)
            while let message = try? connection.reader.next() {
                let target = message.startLine.count > 1 ? message.startLine[1] : ""
                if message.startLine.first == "GET" {
                    respond(stream, body: target == "/events" ? eventsText() : statsJSON())
                } else if target == "/control/stall" {
                    stalled = true
                    stalls += 1
                    respond(stream, body: "{}")
                } else if target == "/control/resume" {
                    stalled = false
                    let release = held
                    held = []
                    for request in release {
                        if request.connection.open {
                            delivered(type: request.type, uuid: request.uuid, body: request.body)
                            respond(request.connection.stream, body: "{}")
                        } else {
                            abandoned += 1
                        }
                    }
                    respond(stream, body: "{}")
                } else {
                    requests += 1
                    let type = stringValue(of: "type", in: message.body) ?? "unknown"
                    let uuid = stringValue(of: "uuid", in: message.body) ?? "?"
                    if stalled {
                        held.append(Held(connection: connection, type: type, uuid: uuid, body: message.body))
                    } else {
                        delivered(type: type, uuid: uuid, body: message.body)
                        respond(stream, body: "{}")
                    }
                }
            }
        }
        stream.onEnd = { _ in
            connection.open = false
            stream.close()
        }
        stream.onClose = { connection.open = false }
        stream.startReading()
    }

    private func delivered(type: String, uuid: String, body: [UInt8]) {
        counts[type, default: 0] += 1
        if type == "call_started" { lifecycle[uuid, default: Lifecycle()].started += 1 }
        if type == "call_ended" {
            lifecycle[uuid, default: Lifecycle()].ended += 1
            lifecycle[uuid, default: Lifecycle()].endedBodies.insert(body)
        }
    }

    /// One line per uuid: `uuid started ended distinct_ended`.
    private func eventsText() -> String {
        var text = ""
        for (uuid, counts) in lifecycle { text += "\(uuid) \(counts.started) \(counts.ended) \(counts.endedBodies.count)\n" }
        return text
    }

    private func respond(_ stream: TCPStream, body: String) {
        stream.write(Array("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)".utf8))
    }

    /// The string value of `"key":"..."` in a flat-enough JSON body (first occurrence).
    private func stringValue(of name: String, in body: [UInt8]) -> String? {
        let key = Array("\"\(name)\":\"".utf8)
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
