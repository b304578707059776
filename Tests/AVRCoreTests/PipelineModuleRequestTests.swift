import Testing
@testable import AVRCore
import AVRProtocol

/// `ModuleRequest` against a real loopback server written on the same loop: what the module
/// receives on the wire, what the request reports, and that cancel closes the connection.
private final class FakeModule {
    let listener: TCPListener
    var received: [UInt8] = []
    var connection: TCPStream?
    var peerClosed = false
    /// Called with everything received so far, after each read.
    var onRequest: ((FakeModule) -> Void)?
    var onPeerClosed: (() -> Void)?

    init(loop: EventLoop) throws {
        listener = try TCPListener(loop: loop, host: "127.0.0.1", port: 0)
        listener.onConnection = { [unowned self] stream in
            self.connection = stream
            stream.onRead = { [unowned self] bytes in
                self.received.append(contentsOf: bytes)
                self.onRequest?(self)
            }
            stream.onEnd = { [unowned self] _ in
                self.peerClosed = true
                stream.close()
                self.onPeerClosed?()
            }
            stream.startReading()
        }
    }

    var url: EndpointURL { try! EndpointURL.parse("http://127.0.0.1:\(listener.port)/module") }
    var text: String { String(decoding: received, as: UTF8.self) }

    func respond(_ text: String) { connection?.write(Array(text.utf8)) }

    /// Closes everything and drops the callbacks (tests set them capturing the module).
    func close() {
        connection?.close()
        listener.close()
        onRequest = nil
        onPeerClosed = nil
    }
}

@Suite struct PipelineModuleRequestTests {
    @Test func fixedBodyAndStreamedChunkedResponse() throws {
        var keep: [AnyObject] = []
        var body: [UInt8] = []
        var heads = 0
        var result: ModuleFailure??
        var request: String = ""
        try withLoop { loop, done in
            let module = try FakeModule(loop: loop)
            keep.append(module)
            module.onRequest = { module in
                guard module.text.hasSuffix("{\"text\":\"hi\"}") else { return }
                request = module.text
                module.onRequest = nil
                module.respond("HTTP/1.1 200 OK\r\nContent-Type: audio/l16\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n")
                module.respond("2\r\nde\r\n0\r\n\r\n")
            }
            let client = ModuleRequest(loop: loop, url: module.url, uuid: "u-1", contentType: "application/json",
                                       body: .fixed(Array("{\"text\":\"hi\"}".utf8)), tls: nil, timeoutMilliseconds: 2000)
            client.onHead = { heads += 1 }
            client.onBody = { body.append(contentsOf: $0) }
            client.onEnd = { failure in
                result = .some(failure)
                module.close()
                done()
            }
            keep.append(client)
            client.start()
        }
        keep.removeAll()
        #expect(request.hasPrefix("POST /module HTTP/1.1\r\nHost: 127.0.0.1:"))
        #expect(request.contains("\r\nX-UUID: u-1\r\n"))
        #expect(request.contains("\r\nContent-Type: application/json\r\n"))
        #expect(request.contains("\r\nContent-Length: 13\r\n"))
        #expect(heads == 1)
        #expect(String(decoding: body, as: UTF8.self) == "abcde")
        guard case .some(.none) = result else { Issue.record("expected success, got \(String(describing: result))"); return }
    }

    @Test func errorStatusCarriesItsBody() throws {
        var keep: [AnyObject] = []
        var bodies = 0
        var failure: ModuleFailure?
        try withLoop { loop, done in
            let module = try FakeModule(loop: loop)
            keep.append(module)
            module.onRequest = { module in
                module.onRequest = nil
                module.respond("HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\nContent-Length: 24\r\n\r\n{\"message\":\"quota gone\"}")
            }
            let client = ModuleRequest(loop: loop, url: module.url, uuid: "u-2", contentType: "application/json",
                                       body: .fixed(Array("{}".utf8)), tls: nil, timeoutMilliseconds: 2000)
            client.onHead = { Issue.record("no 2xx head") }
            client.onBody = { _ in bodies += 1 }
            client.onEnd = {
                failure = $0
                module.close()
                done()
            }
            keep.append(client)
            client.start()
        }
        keep.removeAll()
        #expect(bodies == 0)
        guard case .status(500, let body) = failure else { Issue.record("got \(String(describing: failure))"); return }
        #expect(String(decoding: body, as: UTF8.self) == "{\"message\":\"quota gone\"}")
    }

    @Test func silentModuleTimesOut() throws {
        var keep: [AnyObject] = []
        var failure: ModuleFailure?
        var elapsed: UInt64 = 0
        try withLoop { loop, done in
            let module = try FakeModule(loop: loop)
            keep.append(module)
            let started = loop.nanoseconds
            let client = ModuleRequest(loop: loop, url: module.url, uuid: "u-3", contentType: "application/json",
                                       body: .fixed(Array("{}".utf8)), tls: nil, timeoutMilliseconds: 150)
            client.onEnd = {
                failure = $0
                elapsed = loop.nanoseconds - started
            }
            module.onPeerClosed = {
                module.close()
                done()
            }
            keep.append(client)
            client.start()
        }
        keep.removeAll()
        guard case .request(.headTimeout(150)) = failure else { Issue.record("got \(String(describing: failure))"); return }
        #expect(elapsed >= 140_000_000 && elapsed < 2_000_000_000)
    }

    @Test func stalledBodyTimesOut() throws {
        var keep: [AnyObject] = []
        var failure: ModuleFailure?
        var body: [UInt8] = []
        try withLoop { loop, done in
            let module = try FakeModule(loop: loop)
            keep.append(module)
            module.onRequest = { module in
                module.onRequest = nil
                module.respond("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n")
            }
            let client = ModuleRequest(loop: loop, url: module.url, uuid: "u-4", contentType: "application/json",
                                       body: .fixed(Array("{}".utf8)), tls: nil, timeoutMilliseconds: 150)
            client.onBody = { body.append(contentsOf: $0) }
            client.onEnd = { failure = $0 }
            module.onPeerClosed = {
                module.close()
                done()
            }
            keep.append(client)
            client.start()
        }
        keep.removeAll()
        #expect(body == Array("ok".utf8))
        guard case .request(.responseIdle(150)) = failure else { Issue.record("got \(String(describing: failure))"); return }
    }

    @Test func streamingBodyIsChunkedAndCancelClosesTheConnection() throws {
        var keep: [AnyObject] = []
        var ended = false
        var received = ""
        try withLoop { loop, done in
            let module = try FakeModule(loop: loop)
            keep.append(module)
            let client = ModuleRequest(loop: loop, url: module.url, uuid: "u-5", contentType: "audio/l16",
                                       body: .streaming, tls: nil, timeoutMilliseconds: 1000)
            client.onOpen = {
                let frame = [UInt8](repeating: 7, count: 320)
                frame.withUnsafeBytes { client.send($0) }
                [UInt8](repeating: 9, count: 17).withUnsafeBytes { client.send($0) }
            }
            module.onRequest = { module in
                guard module.text.hasSuffix("\r\n11\r\n" + String(repeating: "\u{9}", count: 17) + "\r\n") else { return }
                module.onRequest = nil
                module.respond("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\nhello")
            }
            client.onBody = { _ in client.cancel() }
            client.onEnd = { _ in ended = true }
            module.onPeerClosed = {
                received = module.text
                module.close()
                done()
            }
            keep.append(client)
            client.start()
        }
        keep.removeAll()
        #expect(!ended)  // no callback after cancel
        #expect(received.contains("\r\nTransfer-Encoding: chunked\r\n"))
        #expect(received.contains("\r\nX-UUID: u-5\r\n"))
        #expect(received.contains("\r\n\r\n140\r\n" + String(repeating: "\u{7}", count: 320) + "\r\n11\r\n"))
    }

    @Test func refusedConnectionIsAConnectFailure() throws {
        var keep: [AnyObject] = []
        var failure: ModuleFailure?
        try withLoop { loop, done in
            let probe = try TCPListener(loop: loop, host: "127.0.0.1", port: 0)
            let url = try EndpointURL.parse("http://127.0.0.1:\(probe.port)/x")
            probe.close()
            let client = ModuleRequest(loop: loop, url: url, uuid: "u-6", contentType: "application/json",
                                       body: .fixed([]), tls: nil, timeoutMilliseconds: 1000)
            client.onEnd = {
                failure = $0
                done()
            }
            keep.append(client)
            client.start()
        }
        keep.removeAll()
        guard case .request(.connect) = failure else { Issue.record("got \(String(describing: failure))"); return }
    }

    /// A streaming request (the ASR stream) answered with an error status whose body never
    /// ends: the wait for the body is bounded by the request timeout, and the failure carries
    /// what came of the body.
    @Test func streamingErrorStatusWithEndlessBodyEnds() throws {
        var keep: [AnyObject] = []
        var failure: ModuleFailure?
        var elapsed: UInt64 = 0
        try withLoop { loop, done in
            let module = try FakeModule(loop: loop)
            keep.append(module)
            module.onRequest = { module in
                module.onRequest = nil
                module.respond("HTTP/1.1 500 Internal Server Error\r\nTransfer-Encoding: chunked\r\n\r\n"
                    + "18\r\n{\"message\":\"quota gone\"}\r\n")
            }
            let started = loop.nanoseconds
            let client = ModuleRequest(loop: loop, url: module.url, uuid: "u-7", contentType: "audio/l16",
                                       body: .streaming, tls: nil, timeoutMilliseconds: 200)
            client.onEnd = {
                failure = $0
                elapsed = loop.nanoseconds - started
                module.close()
                done()
            }
            keep.append(client)
            client.start()
        }
        keep.removeAll()
        guard case .status(500, let body) = failure else { Issue.record("got \(String(describing: failure))"); return }
        #expect(String(decoding: body, as: UTF8.self) == "{\"message\":\"quota gone\"}")
        #expect(elapsed >= 150_000_000 && elapsed < 3_000_000_000)
    }
}
