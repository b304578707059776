import Testing
@testable import AVRCore
import AVRProtocol

/// `HTTPRequestTask` against real loopback peers on the same loop: a peer that stops reading
/// a streaming body, one that answers early while the body streams, and the hand-back of a
/// kept-alive connection.
@Suite struct HTTPRequestTaskTests {
    /// A listener whose one connection is kept (and read only when `reads`).
    private final class Peer {
        let listener: TCPListener
        var connection: TCPStream?
        var received: [UInt8] = []
        var onConnection: ((Peer) -> Void)?
        var onRead: ((Peer) -> Void)?

        init(loop: EventLoop, reads: Bool) throws {
            listener = try TCPListener(loop: loop, host: "127.0.0.1", port: 0)
            listener.onConnection = { [unowned self] stream in
                self.connection = stream
                stream.onEnd = { _ in stream.close() }
                if reads {
                    stream.onRead = { [unowned self] bytes in
                        self.received.append(contentsOf: bytes)
                        self.onRead?(self)
                    }
                    stream.startReading()
                }
                self.onConnection?(self)
            }
        }

        func close() {
            connection?.close()
            listener.close()
            onConnection = nil
            onRead = nil
        }
    }

    private static let head = HTTPRequestTask.Head(target: "/x", host: "127.0.0.1", headers: [("X-UUID", "u")])

    @Test func peerThatStopsReadingIsBoundedThenStalled() throws {
        var keep: [AnyObject] = []
        var failure: HTTPRequestFailure?
        var dropped = 0
        var maxPending = 0
        try withLoop(deadlineMs: 10_000) { loop, done in
            let peer = try Peer(loop: loop, reads: false)
            keep.append(peer)
            let task = HTTPRequestTask(loop: loop, limits: .init(requestStallTimeout: 200, maxPendingBytes: 64 * 1024))
            keep.append(task)
            let part = [UInt8](repeating: 1, count: 32 * 1024)
            task.onOpen = {
                // Far more than the kernel's buffers hold: the bound must cut in.
                for _ in 0..<4096 where task.droppedParts == 0 {
                    part.withUnsafeBytes { task.send($0) }
                }
            }
            task.onDrop = { dropped = $0 }
            task.onEnd = { result in
                if case .failure(let reason) = result { failure = reason }
                peer.close()
                done()
            }
            Connector.connect(loop: loop, host: "127.0.0.1", port: peer.listener.port, tls: nil, timeout: 1000) { result in
                guard case .success(let connected) = result else { Issue.record("no connection"); return done() }
                task.run(on: connected, head: Self.head, body: .streaming)
                maxPending = connected.pendingWriteBytes
            }
        }
        keep.removeAll()
        #expect(dropped >= 1)
        #expect(maxPending <= 64 * 1024 + 32 * 1024 + 512, "unsent bytes beyond the bound: \(maxPending)")
        guard case .requestStalled(200, let pending)? = failure else { Issue.record("got \(String(describing: failure))"); return }
        #expect(pending > 0)
    }

    @Test func earlyResponseWhileTheBodyStreamsThenKeepAliveIsHandedBack() throws {
        var keep: [AnyObject] = []
        var heads: [Int] = []
        var body: [UInt8] = []
        var handedBack: ClientStream?
        var sentAfterHead = false
        try withLoop { loop, done in
            let peer = try Peer(loop: loop, reads: true)
            keep.append(peer)
            let task = HTTPRequestTask(loop: loop, limits: .init(headTimeout: 2000, requestStallTimeout: 2000))
            task.handsBackStream = true
            keep.append(task)
            peer.onRead = { peer in
                let text = String(decoding: peer.received, as: UTF8.self)
                if text.hasSuffix("3\r\nabc\r\n") {
                    peer.connection?.write(Array("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nok".utf8))
                } else if text.hasSuffix("0\r\n\r\n") {
                    peer.connection?.write(Array("!!".utf8))
                }
            }
            task.onOpen = { Array("abc".utf8).withUnsafeBytes { task.send($0) } }
            task.onHead = {
                heads.append(task.parser.status)
                // The body goes on beside the response, then ends.
                Array("defg".utf8).withUnsafeBytes { task.send($0) }
                sentAfterHead = task.isOpen
                task.endBody()
            }
            task.onBody = { bytes in
                body.append(contentsOf: bytes)
                return true
            }
            task.onEnd = { result in
                if case .success(let stream) = result { handedBack = stream } else { Issue.record("\(result)") }
                handedBack?.close()
                peer.close()
                done()
            }
            task.start(host: "127.0.0.1", port: peer.listener.port, tls: nil, usesTLS: false, timeout: 1000,
                       head: Self.head, body: .streaming)
        }
        keep.removeAll()
        #expect(heads == [200])
        #expect(sentAfterHead)
        #expect(String(decoding: body, as: UTF8.self) == "ok!!")
        #expect(handedBack != nil, "a kept-alive connection whose request ended is handed back")
    }

    @Test func connectionCloseResponseIsNotHandedBack() throws {
        var keep: [AnyObject] = []
        var ended: Result<ClientStream?, HTTPRequestFailure>?
        try withLoop { loop, done in
            let peer = try Peer(loop: loop, reads: true)
            keep.append(peer)
            let task = HTTPRequestTask(loop: loop, limits: .init(headTimeout: 2000, responseIdleTimeout: 2000))
            task.handsBackStream = true
            keep.append(task)
            peer.onRead = { peer in
                guard String(decoding: peer.received, as: UTF8.self).hasSuffix("\r\n\r\n{}") else { return }
                peer.connection?.write(Array("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok".utf8))
            }
            task.onEnd = { result in
                ended = result
                peer.close()
                done()
            }
            task.start(host: "127.0.0.1", port: peer.listener.port, tls: nil, usesTLS: false, timeout: 1000,
                       head: Self.head, body: .fixed(Array("{}".utf8)))
        }
        keep.removeAll()
        guard case .success(nil)? = ended else { Issue.record("got \(String(describing: ended))"); return }
    }
}
