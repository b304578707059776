import Testing
@testable import AVRCore

/// Issue 13, item 5: no re-entrant teardown, and loop-thread confinement checked in debug.
@Suite struct LoopConfinementTests {
    /// A write that fails (the peer reset the connection) reports it on a later loop turn:
    /// `onEnd` never runs inside `write`. The client writes every few milliseconds until the
    /// failure arrives (the reset takes a moment to come back), bounded by the loop's deadline.
    @Test func writeFailureIsReportedOutsideWrite() throws {
        var failure: UVError?
        var insideWrite = false
        var endedInsideWrite = false
        try withLoop { loop, done in
            let listener = try TCPListener(loop: loop, host: "127.0.0.1", port: 0)
            listener.onConnection = { stream in stream.close() }
            let client = try TCPStream(loop: loop)
            let pacer = try Timer(loop: loop)
            client.connect(to: SocketAddress(numericHost: "127.0.0.1", port: listener.port)!) { error in
                #expect(error == nil)
                client.onEnd = { error in
                    endedInsideWrite = insideWrite
                    failure = error
                    client.close()
                    listener.close()
                    pacer.close()
                    done()
                }
                pacer.start(timeout: 0, repeat: 5) {
                    insideWrite = true
                    client.write(Array("ping".utf8))
                    client.write(Array("pong".utf8))  // ignored once a write has failed
                    insideWrite = false
                }
            }
        }
        #expect(failure != nil)
        #expect(!endedInsideWrite, "onEnd ran inside write()")
    }

    /// A stream closed between the failing write and the next loop turn reports nothing
    /// and leaks nothing (the deferred work and its timer go with the stream).
    @Test func closingBeforeTheDeferredFailureDropsIt() throws {
        var ended = false
        var failedWriteSeen = false
        try withLoop { loop, done in
            let listener = try TCPListener(loop: loop, host: "127.0.0.1", port: 0)
            listener.onConnection = { stream in stream.close() }
            let client = try TCPStream(loop: loop)
            let pacer = try Timer(loop: loop)
            client.connect(to: SocketAddress(numericHost: "127.0.0.1", port: listener.port)!) { error in
                #expect(error == nil)
                client.onEnd = { _ in ended = true }
                client.onClose = {
                    listener.close()
                    pacer.close()
                    done()
                }
                pacer.start(timeout: 0, repeat: 5) {
                    client.write(Array("ping".utf8))
                    // A failed write queues nothing; a successful one is taken by the
                    // kernel at once on loopback. Closing right after the failing write
                    // (before any loop turn) must drop the deferred failure.
                    if client.hasFailedWrite {
                        failedWriteSeen = true
                        pacer.stop()
                        client.close()
                    }
                }
            }
        }
        #expect(failedWriteSeen)
        #expect(!ended, "a deferred failure ran after close()")
    }

    /// The predicate behind `assertOnLoop()`: any thread may touch a loop that is not
    /// running (set-up, tear-down); while it runs, only the thread inside `run()` may.
    /// (The assertion itself traps, which a test process cannot survive.)
    @Test func onLoopThreadPredicate() throws {
        let loop = try EventLoop()
        #expect(loop.isOnLoopThread)
        var insideRun = false
        var otherThread = true
        let timer = try Timer(loop: loop)
        timer.start(timeout: 0) {
            insideRun = loop.isOnLoopThread
            let box = UncheckedBox(loop)
            let thread = try! LoopThread { box.result = box.loop.isOnLoopThread }
            thread.join()
            otherThread = box.result
            timer.close()
        }
        loop.run()
        #expect(insideRun)
        #if DEBUG
        #expect(!otherThread, "another thread passed the check while the loop ran")
        #else
        #expect(otherThread, "release builds do not track the thread")
        #endif
        #expect(loop.isOnLoopThread)
        try loop.close()
    }
}

/// Hands a loop to another thread for the predicate test only (it reads, never mutates).
private final class UncheckedBox: @unchecked Sendable {
    let loop: EventLoop
    var result = true
    init(_ loop: EventLoop) { self.loop = loop }
}
