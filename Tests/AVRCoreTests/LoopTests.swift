import Testing
@testable import AVRCore

/// Runs `body` on a fresh loop with a watchdog: the test fails (instead of hanging) if the
/// loop still has work after `deadlineMs`. Every handle must be closed at the end, so
/// `uv_loop_close` succeeds — a leaked handle fails the test.
func withLoop(deadlineMs: UInt64 = 5_000, _ body: (EventLoop, _ done: @escaping () -> Void) throws -> Void) throws {
    let loop = try EventLoop()
    let watchdog = try Timer(loop: loop)
    var timedOut = false
    watchdog.start(timeout: deadlineMs) {
        timedOut = true
        loop.stop()
    }
    try body(loop) { watchdog.close() }
    loop.run()
    #expect(!timedOut, "loop work did not finish within \(deadlineMs) ms")
    if timedOut { return }
    #expect(loop.aliveHandleCount == 0)
    try loop.close()
}

@Suite struct LoopTests {
    @Test func echoRoundTripOverLoopback() throws {
        var received: [UInt8] = []
        var serverSide: TCPStream?
        try withLoop { loop, done in
            let listener = try TCPListener(loop: loop, host: "127.0.0.1", port: 0)
            #expect(listener.port > 0)
            listener.onConnection = { stream in
                serverSide = stream
                stream.onRead = { bytes in stream.write(bytes) }
                stream.onEnd = { _ in stream.close() }
                stream.startReading()
            }
            let client = try TCPStream(loop: loop)
            client.connect(to: SocketAddress(numericHost: "127.0.0.1", port: listener.port)!) { error in
                #expect(error == nil)
                client.onRead = { bytes in
                    received.append(contentsOf: bytes)
                    if received.count == 5 {
                        client.close()
                        listener.close()
                        done()
                    }
                }
                client.startReading()
                client.write(Array("hello".utf8))
            }
        }
        #expect(received == Array("hello".utf8))
        _ = serverSide
    }

    /// Writing to a connection the peer has closed and reset raises SIGPIPE unless the process
    /// ignores it, and SIGPIPE's default action kills the process: every call on it would end
    /// because one peer went away. Creating a loop makes the process ignore it; the write then
    /// fails with EPIPE (or ECONNRESET), reported through `onEnd`.
    @Test func writeToAResetPeerIsAnErrorNotASignal() throws {
        var failure: UVError?
        try withLoop { loop, done in
            let listener = try TCPListener(loop: loop, host: "127.0.0.1", port: 0)
            listener.onConnection = { stream in stream.close() }  // FIN at once
            let client = try TCPStream(loop: loop)
            let pause = try Timer(loop: loop)
            client.connect(to: SocketAddress(numericHost: "127.0.0.1", port: listener.port)!) { error in
                #expect(error == nil)
                client.onEnd = { error in
                    failure = error
                    client.close()
                    listener.close()
                    pause.close()
                    done()
                }
                // The first write reaches a closed socket, which answers with a reset; once that
                // has arrived, the next write is the one that would raise SIGPIPE.
                client.write(Array("first".utf8))
                pause.start(timeout: 100) {
                    client.write(Array("second".utf8))
                    client.write(Array("third".utf8))
                }
            }
        }
        #expect(failure != nil)
    }

    @Test func connectionRefusedIsReported() throws {
        var outcome: UVError?
        try withLoop { loop, done in
            // Find a port nobody listens on: bind, read it, close.
            let probe = try TCPListener(loop: loop, host: "127.0.0.1", port: 0)
            let port = probe.port
            probe.close()
            let client = try TCPStream(loop: loop)
            client.connect(to: SocketAddress(numericHost: "127.0.0.1", port: port)!) { error in
                outcome = error
                client.close()
                done()
            }
        }
        #expect(outcome?.name == "ECONNREFUSED")
    }

    /// A port another socket listens on is an error at start-up (EADDRINUSE), with and
    /// without SO_REUSEPORT on our side — never a silent listen on some other port (libuv
    /// defers the bind error to the listen step, which this listener does itself).
    @Test(arguments: [false, true])
    func portInUseIsAnError(reusePort: Bool) throws {
        var failure: UVError?
        try withLoop { loop, done in
            let holder = try TCPListener(loop: loop, host: "127.0.0.1", port: 0)
            do throws(UVError) {
                let second = try TCPListener(loop: loop, host: "127.0.0.1", port: holder.port, reusePort: reusePort)
                Issue.record("listening on \(second.port) although \(holder.port) is taken")
                second.close()
            } catch {
                failure = error
            }
            holder.close()
            done()
        }
        #expect(failure?.name == "EADDRINUSE")
    }

    @Test func closingBeforeConnectCompletesCancelsIt() throws {
        var outcome: UVError?
        try withLoop { loop, done in
            let listener = try TCPListener(loop: loop, host: "127.0.0.1", port: 0)
            let client = try TCPStream(loop: loop)
            client.connect(to: SocketAddress(numericHost: "127.0.0.1", port: listener.port)!) { error in
                outcome = error
                listener.close()
                done()
            }
            client.close()
        }
        #expect(outcome?.isCancelled == true)
    }

    @Test func writesQueueWhenThePeerDoesNotReadAndDrainLater() throws {
        let total = 8 * 1024 * 1024
        var receivedCount = 0
        var maxPending = 0
        var drained = false
        try withLoop(deadlineMs: 10_000) { loop, done in
            let listener = try TCPListener(loop: loop, host: "127.0.0.1", port: 0)
            var peer: TCPStream?
            let client = try TCPStream(loop: loop)
            listener.onConnection = { stream in
                peer = stream
                // Read only after the client has queued everything: backpressure first.
                let start = try! Timer(loop: loop)
                start.start(timeout: 50) {
                    start.close()
                    stream.onRead = { bytes in
                        receivedCount += bytes.count
                        if receivedCount == total {
                            stream.close()
                            client.close()
                            listener.close()
                            done()
                        }
                    }
                    stream.startReading()
                }
            }
            client.connect(to: SocketAddress(numericHost: "127.0.0.1", port: listener.port)!) { error in
                #expect(error == nil)
                client.onDrain = { drained = true }
                let chunk = [UInt8](repeating: 0x5A, count: 64 * 1024)
                for _ in 0..<(total / chunk.count) {
                    client.write(chunk)
                    maxPending = max(maxPending, client.pendingWriteBytes)
                }
            }
            _ = peer
        }
        #expect(receivedCount == total)
        #expect(maxPending > 0, "the kernel should not take 8 MiB at once")
        #expect(drained)
    }

    /// A peer that never reads cannot hold a connection closed after a flush (nor, through its
    /// pending write, the loop): the deadline closes it hard.
    @Test func closeAfterFlushToAPeerThatNeverReadsClosesAtTheDeadline() throws {
        var closedAfter: UInt64?
        var pendingAtClose = 0
        try withLoop(deadlineMs: 5_000) { loop, done in
            let listener = try TCPListener(loop: loop, host: "127.0.0.1", port: 0)
            var peer: TCPStream?
            let client = try TCPStream(loop: loop)
            listener.onConnection = { stream in peer = stream }  // never reads
            client.connect(to: SocketAddress(numericHost: "127.0.0.1", port: listener.port)!) { error in
                #expect(error == nil)
                let chunk = [UInt8](repeating: 0x5A, count: 64 * 1024)
                while client.pendingWriteBytes == 0 { client.write(chunk) }
                for _ in 0..<16 { client.write(chunk) }
                pendingAtClose = client.pendingWriteBytes
                let started = loop.milliseconds
                client.onClose = {
                    closedAfter = loop.milliseconds - started
                    peer?.close()
                    listener.close()
                    done()
                }
                client.closeAfterFlush(deadline: 200)
            }
        }
        #expect(pendingAtClose > 0, "the peer was to leave bytes unsent")
        let after = try #require(closedAfter)
        #expect(after >= 190 && after < 2000, "closed \(after) ms after closeAfterFlush")
    }

    /// A peer with megabytes waiting must not hold the loop: a stream reads at most one
    /// buffer (64 KiB) per loop turn, so timers (the pacing) run between its reads. The first
    /// read of a turn arms a zero timer, which fires at the start of the next turn: the bytes
    /// read in between are what one turn read. Without the yield libuv reads up to 32
    /// buffers (2 MiB) from one socket in one turn.
    @Test func aFloodingPeerGetsOneBufferPerLoopTurn() throws {
        let total = 3 * 1024 * 1024
        var receivedCount = 0
        var thisTurn = 0
        var mostInOneTurn = 0
        var turns = 0
        try withLoop(deadlineMs: 10_000) { loop, done in
            let listener = try TCPListener(loop: loop, host: "127.0.0.1", port: 0)
            var peer: TCPStream?
            let client = try TCPStream(loop: loop)
            let turnEnded = try Timer(loop: loop)
            listener.onConnection = { stream in
                peer = stream
                // Start reading once the client has queued everything, so megabytes wait.
                let start = try! Timer(loop: loop)
                start.start(timeout: 50) {
                    start.close()
                    stream.onRead = { bytes in
                        receivedCount += bytes.count
                        thisTurn += bytes.count
                        mostInOneTurn = max(mostInOneTurn, thisTurn)
                        if !turnEnded.isActive {
                            turnEnded.start(timeout: 0) {
                                turns += 1
                                thisTurn = 0
                            }
                        }
                        if receivedCount == total {
                            turnEnded.close()
                            stream.close()
                            client.close()
                            listener.close()
                            done()
                        }
                    }
                    stream.startReading()
                }
            }
            client.connect(to: SocketAddress(numericHost: "127.0.0.1", port: listener.port)!) { error in
                #expect(error == nil)
                let chunk = [UInt8](repeating: 0x5A, count: 64 * 1024)
                for _ in 0..<(total / chunk.count) { client.write(chunk) }
            }
            _ = peer
        }
        #expect(receivedCount == total)
        #expect(mostInOneTurn > 0 && mostInOneTurn <= 64 * 1024, "\(mostInOneTurn) bytes read in one loop turn")
        #expect(turns >= total / (64 * 1024) / 2, "\(turns) loop turns for \(total) bytes")
    }

    @Test func shutdownSendsEOFAfterQueuedBytesAndKeepsReading() throws {
        let total = 4 * 1024 * 1024
        var clientReceived = 0
        var clientSawEOFAt: Int?
        var shutdownResult: UVError?? = .none
        var serverReadAfterShutdown: [UInt8] = []
        try withLoop(deadlineMs: 10_000) { loop, done in
            let listener = try TCPListener(loop: loop, host: "127.0.0.1", port: 0)
            var peer: TCPStream?
            let client = try TCPStream(loop: loop)
            listener.onConnection = { stream in
                peer = stream
                // More than the kernel takes at once, so the FIN must wait for the queue.
                stream.write([UInt8](repeating: 0x41, count: total))
                #expect(stream.pendingWriteBytes > 0)
                stream.shutdown { error in shutdownResult = .some(error) }
                stream.write(Array("ignored".utf8))
                stream.onRead = { bytes in
                    serverReadAfterShutdown.append(contentsOf: bytes)
                    if serverReadAfterShutdown.count == 5 {
                        stream.close()
                        client.close()
                        listener.close()
                        done()
                    }
                }
                stream.startReading()
            }
            client.connect(to: SocketAddress(numericHost: "127.0.0.1", port: listener.port)!) { error in
                #expect(error == nil)
                client.onRead = { bytes in clientReceived += bytes.count }
                client.onEnd = { error in
                    #expect(error == nil)
                    clientSawEOFAt = clientReceived
                    // Half-closed, not closed: the server still reads.
                    client.write(Array("after".utf8))
                }
                client.startReading()
            }
            _ = peer
        }
        #expect(clientSawEOFAt == total)
        #expect(serverReadAfterShutdown == Array("after".utf8))
        #expect(shutdownResult == .some(nil))
    }

    /// A peer that reads gets every queued byte, and bytes written after `closeAfterFlush`
    /// while the queue drains, then the end of the stream; the stream closes once flushed,
    /// well before the deadline.
    @Test func closeAfterFlushToAReadingPeerSendsEverythingThenCloses() throws {
        let total = 4 * 1024 * 1024
        var clientReceived = 0
        var lastBytes: [UInt8] = []
        var clientSawEOFAt: Int?
        var serverClosedAfter: UInt64?
        try withLoop(deadlineMs: 10_000) { loop, done in
            let listener = try TCPListener(loop: loop, host: "127.0.0.1", port: 0)
            var peer: TCPStream?
            let client = try TCPStream(loop: loop)
            listener.onConnection = { stream in
                peer = stream
                stream.write([UInt8](repeating: 0x41, count: total))
                #expect(stream.pendingWriteBytes > 0, "the kernel should not take 4 MiB at once")
                let started = loop.milliseconds
                stream.onClose = { serverClosedAfter = loop.milliseconds - started }
                stream.closeAfterFlush(deadline: 5_000)
                stream.write(Array("tail".utf8))
                #expect(!stream.isClosing)
            }
            client.connect(to: SocketAddress(numericHost: "127.0.0.1", port: listener.port)!) { error in
                #expect(error == nil)
                client.onRead = { bytes in
                    clientReceived += bytes.count
                    lastBytes = Array(bytes.suffix(4))
                }
                client.onEnd = { error in
                    #expect(error == nil)
                    clientSawEOFAt = clientReceived
                    client.close()
                    listener.close()
                    done()
                }
                client.startReading()
            }
            _ = peer
        }
        #expect(clientSawEOFAt == total + 4)
        #expect(lastBytes == Array("tail".utf8))
        let after = try #require(serverClosedAfter)
        #expect(after < 4_000, "closed \(after) ms after closeAfterFlush: the flush, not the deadline")
    }

    @Test func resolvesLocalhost() throws {
        var addresses: [SocketAddress] = []
        try withLoop { loop, done in
            DNSResolver.resolve(loop: loop, host: "localhost", port: 8080) { result in
                addresses = (try? result.get()) ?? []
                done()
            }
        }
        #expect(!addresses.isEmpty)
        #expect(addresses.allSatisfy { $0.port == 8080 })
    }

    @Test func unknownHostFails() throws {
        var failed = false
        try withLoop { loop, done in
            DNSResolver.resolve(loop: loop, host: "no-such-host.invalid", port: 80) { result in
                if case .failure = result { failed = true }
                done()
            }
        }
        #expect(failed)
    }

    @Test func repeatingTimerFiresAndCloses() throws {
        var ticks = 0
        try withLoop { loop, done in
            let timer = try Timer(loop: loop)
            timer.start(timeout: 1, repeat: 1) {
                ticks += 1
                if ticks == 5 {
                    timer.close()
                    done()
                }
            }
        }
        #expect(ticks == 5)
    }
}
