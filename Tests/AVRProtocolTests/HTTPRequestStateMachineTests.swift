import Testing
@testable import AVRProtocol

/// Transcripts of `HTTPRequestStateMachine`: each step an event (with the time and the unsent
/// bytes where the event carries them) and the action it must produce.
@Suite struct HTTPRequestStateMachineTests {
    typealias M = HTTPRequestStateMachine

    // MARK: Request bodies

    @Test func fixedBodyContentLengthResponseIsReusable() {
        var m = M(limits: .init(headTimeout: 1000, responseIdleTimeout: 1000))
        #expect(m.start(body: .fixed, now: 0) == .writeHead(checkAfter: 1000))
        #expect(m.bodyPart(bytes: 10, pendingBytes: 0, now: 1) == .none, "a fixed body takes no parts")
        #expect(m.endBody() == .none)
        #expect(m.responseHead(now: 10) == .deliverHead)
        #expect(m.responseBody(now: 20) == .deliverBody)
        #expect(m.responseComplete(keepAlive: true) == .succeed(reuseConnection: true))
        #expect(m.state == .finished)
        #expect(m.check(now: 5000, pendingBytes: 0) == .none, "nothing is timed once finished")
    }

    @Test func fixedBodyWithoutTimeoutsArmsNoTimer() {
        var m = M(limits: .init())
        #expect(m.start(body: .fixed, now: 0) == .writeHead(checkAfter: nil))
        #expect(m.responseHead(now: 1) == .deliverHead)
        #expect(m.responseComplete(keepAlive: false) == .succeed(reuseConnection: false))
    }

    @Test func streamingBodyChunkedResponseThenLastChunk() {
        var m = M(limits: .init(requestStallTimeout: 500))
        #expect(m.start(body: .streaming, now: 0) == .writeHead(checkAfter: 500))
        #expect(m.bodyPart(bytes: 320, pendingBytes: 0, now: 20) == .writeBodyPart)
        #expect(m.bodyPart(bytes: 0, pendingBytes: 0, now: 30) == .none, "an empty part would end a chunked body")
        #expect(m.bodyPart(bytes: 320, pendingBytes: 0, now: 40) == .writeBodyPart)
        #expect(m.responseHead(now: 50) == .deliverHead)
        #expect(m.responseBody(now: 60) == .deliverBody)
        #expect(m.endBody() == .writeLastChunk)
        #expect(m.endBody() == .none, "one last chunk")
        #expect(m.bodyPart(bytes: 320, pendingBytes: 0, now: 70) == .none, "no part after the last chunk")
        #expect(m.responseComplete(keepAlive: true) == .succeed(reuseConnection: true))
    }

    @Test func backpressurePausesAndResumes() {
        var m = M(limits: .init(requestStallTimeout: 10_000, maxPendingBytes: 1000))
        _ = m.start(body: .streaming, now: 0)
        #expect(m.bodyPart(bytes: 600, pendingBytes: 0, now: 20) == .writeBodyPart)
        #expect(m.bodyPart(bytes: 600, pendingBytes: 600, now: 40) == .writeBodyPart)
        #expect(m.bodyPart(bytes: 600, pendingBytes: 1200, now: 60) == .dropBodyPart(dropped: 1))
        #expect(m.state == .running(request: .streaming(paused: true), response: .waitingForHead))
        #expect(m.bodyPart(bytes: 600, pendingBytes: 1200, now: 80) == .dropBodyPart(dropped: 2))
        #expect(m.drained(now: 100) == .none)
        #expect(m.state == .running(request: .streaming(paused: false), response: .waitingForHead))
        #expect(m.bodyPart(bytes: 600, pendingBytes: 0, now: 120) == .writeBodyPart)
        // Resumes too when the peer has taken enough, without draining all.
        #expect(m.bodyPart(bytes: 600, pendingBytes: 1100, now: 140) == .dropBodyPart(dropped: 3))
        #expect(m.bodyPart(bytes: 600, pendingBytes: 400, now: 160) == .writeBodyPart)
        #expect(m.dropped == 3)
    }

    // MARK: Timeouts

    @Test func headTimeoutCountsFromTheHeadWrite() {
        var m = M(limits: .init(headTimeout: 1000))
        #expect(m.start(body: .streaming, now: 100) == .writeHead(checkAfter: 1000))
        #expect(m.bodyPart(bytes: 320, pendingBytes: 0, now: 500) == .writeBodyPart, "audio flows, no head yet")
        #expect(m.check(now: 700, pendingBytes: 0) == .checkAfter(400))
        #expect(m.check(now: 1100, pendingBytes: 0) == .fail(.headTimeout(milliseconds: 1000)))
        #expect(m.state == .failed(.headTimeout(milliseconds: 1000)))
        #expect(m.bodyPart(bytes: 320, pendingBytes: 0, now: 1120) == .none)
        #expect(m.responseHead(now: 1200) == .none, "a late head changes nothing")
    }

    @Test func headInTimeStopsTheHeadBound() {
        var m = M(limits: .init(headTimeout: 1000))
        _ = m.start(body: .streaming, now: 0)
        #expect(m.responseHead(now: 999) == .deliverHead)
        #expect(m.check(now: 1000, pendingBytes: 0) == .none, "a streaming response body may be quiet")
    }

    @Test func idleResponseBodyTimesOutAfterEachSilence() {
        var m = M(limits: .init(headTimeout: 1000, responseIdleTimeout: 1000))
        _ = m.start(body: .fixed, now: 0)
        #expect(m.responseHead(now: 900) == .deliverHead)
        #expect(m.check(now: 1000, pendingBytes: 0) == .checkAfter(900), "the head came: only the body silence counts")
        #expect(m.responseBody(now: 1500) == .deliverBody)
        #expect(m.check(now: 1900, pendingBytes: 0) == .checkAfter(600))
        #expect(m.check(now: 2499, pendingBytes: 0) == .checkAfter(1))
        #expect(m.check(now: 2500, pendingBytes: 0) == .fail(.responseIdle(milliseconds: 1000)))
    }

    @Test func pendingBytesBoundExceededThenStalledEndsTheRequest() {
        var m = M(limits: .init(requestStallTimeout: 1000, maxPendingBytes: 1000))
        _ = m.start(body: .streaming, now: 0)
        #expect(m.responseHead(now: 5) == .deliverHead)
        // The peer takes the first parts, then nothing.
        #expect(m.bodyPart(bytes: 600, pendingBytes: 0, now: 20) == .writeBodyPart)
        #expect(m.bodyPart(bytes: 600, pendingBytes: 0, now: 40) == .writeBodyPart)
        #expect(m.bodyPart(bytes: 600, pendingBytes: 600, now: 60) == .writeBodyPart)
        #expect(m.bodyPart(bytes: 600, pendingBytes: 1200, now: 80) == .dropBodyPart(dropped: 1))
        #expect(m.check(now: 500, pendingBytes: 1200) == .checkAfter(540), "nothing taken since 40 ms")
        for t in stride(from: UInt64(100), to: 1040, by: 20) {
            #expect(m.bodyPart(bytes: 600, pendingBytes: 1200, now: t) != .writeBodyPart)
        }
        #expect(m.dropped == 48)
        #expect(m.check(now: 1039, pendingBytes: 1200) == .checkAfter(1))
        #expect(m.check(now: 1040, pendingBytes: 1200) == .fail(.requestStalled(milliseconds: 1000, pendingBytes: 1200)))
    }

    @Test func aPeerThatReadsSlowlyIsNotStalled() {
        var m = M(limits: .init(requestStallTimeout: 1000, maxPendingBytes: 100_000))
        _ = m.start(body: .streaming, now: 0)
        var pending = 0
        for t in stride(from: UInt64(20), to: 5000, by: 20) {
            #expect(m.bodyPart(bytes: 320, pendingBytes: pending, now: t) == .writeBodyPart)
            pending += 320 - 300  // the peer takes a little less than is written
            #expect(m.check(now: t + 1, pendingBytes: pending) == .checkAfter(1000))
        }
    }

    @Test func nothingPendingIsNeverAStall() {
        var m = M(limits: .init(requestStallTimeout: 1000))
        _ = m.start(body: .streaming, now: 0)
        #expect(m.check(now: 5000, pendingBytes: 0) == .checkAfter(1000), "a quiet caller is no stall")
        #expect(m.bodyPart(bytes: 320, pendingBytes: 0, now: 5000) == .writeBodyPart)
        #expect(m.check(now: 5500, pendingBytes: 320) == .checkAfter(500), "written at 5000, not taken")
        #expect(m.check(now: 6000, pendingBytes: 320) == .fail(.requestStalled(milliseconds: 1000, pendingBytes: 320)))
    }

    @Test func stallIsNotTimedAfterTheLastChunk() {
        var m = M(limits: .init(requestStallTimeout: 1000))
        _ = m.start(body: .streaming, now: 0)
        _ = m.bodyPart(bytes: 320, pendingBytes: 0, now: 10)
        #expect(m.endBody() == .writeLastChunk)
        #expect(m.check(now: 5000, pendingBytes: 325) == .none)
    }

    // MARK: Ends

    @Test func peerCloseMidBody() {
        var m = M(limits: .init())
        _ = m.start(body: .fixed, now: 0)
        _ = m.responseHead(now: 1)
        _ = m.responseBody(now: 2)
        #expect(m.peerClosed(completeAtEOF: false, transportError: false, sawResponseBytes: true) == .fail(.closedMidResponse))
        #expect(m.responseComplete(keepAlive: true) == .none)
    }

    @Test func peerCloseBeforeAnyResponse() {
        var m = M(limits: .init())
        _ = m.start(body: .fixed, now: 0)
        #expect(m.peerClosed(completeAtEOF: false, transportError: false, sawResponseBytes: false) == .fail(.closedBeforeResponse))
    }

    @Test func peerCloseWithTransportError() {
        var m = M(limits: .init())
        _ = m.start(body: .streaming, now: 0)
        _ = m.responseHead(now: 1)
        #expect(m.peerClosed(completeAtEOF: true, transportError: true, sawResponseBytes: true) == .fail(.connectionFailed),
                "a truncated TLS stream is no end of a close-delimited body")
    }

    @Test func closeDelimitedResponseEndsAtEOF() {
        var m = M(limits: .init(responseIdleTimeout: 1000))
        _ = m.start(body: .fixed, now: 0)
        _ = m.responseHead(now: 1)
        #expect(m.responseBody(now: 2) == .deliverBody)
        #expect(m.peerClosed(completeAtEOF: true, transportError: false, sawResponseBytes: true) == .succeed(reuseConnection: false))
        #expect(m.state == .finished)
    }

    @Test func earlyResponseWhileTheBodyStreams() {
        var m = M(limits: .init(headTimeout: 1000, requestStallTimeout: 1000))
        _ = m.start(body: .streaming, now: 0)
        #expect(m.bodyPart(bytes: 320, pendingBytes: 0, now: 20) == .writeBodyPart)
        #expect(m.responseHead(now: 30) == .deliverHead)
        #expect(m.responseBody(now: 35) == .deliverBody)
        #expect(m.bodyPart(bytes: 320, pendingBytes: 0, now: 40) == .writeBodyPart, "the body goes on beside the response")
        #expect(m.state == .running(request: .streaming(paused: false), response: .receivingBody))
        #expect(m.responseComplete(keepAlive: true) == .succeed(reuseConnection: false),
                "a connection whose request body is unfinished is not reused")
        #expect(m.bodyPart(bytes: 320, pendingBytes: 0, now: 60) == .none)
        #expect(m.endBody() == .none)
    }

    @Test func invalidResponseFails() {
        var m = M(limits: .init())
        _ = m.start(body: .fixed, now: 0)
        #expect(m.responseInvalid() == .fail(.invalidResponse))
        #expect(m.responseInvalid() == .none)
    }

    @Test func cancelSilencesEverything() {
        var m = M(limits: .init(headTimeout: 10))
        _ = m.start(body: .streaming, now: 0)
        m.cancel()
        #expect(m.state == .cancelled)
        #expect(m.check(now: 100, pendingBytes: 0) == .none)
        #expect(m.bodyPart(bytes: 1, pendingBytes: 0, now: 100) == .none)
        #expect(m.peerClosed(completeAtEOF: false, transportError: true, sawResponseBytes: false) == .none)
    }

    // MARK: Chunked encoding

    @Test func chunkedEncodingByteVectors() {
        func chunk(_ count: Int) -> [UInt8] {
            var out: [UInt8] = []
            [UInt8](repeating: 0x61, count: count).withUnsafeBytes { HTTPChunkedEncoding.appendChunk($0, to: &out) }
            return out
        }
        #expect(chunk(0) == [])
        #expect(chunk(1) == Array("1\r\na\r\n".utf8))
        #expect(chunk(10) == Array("a\r\naaaaaaaaaa\r\n".utf8))
        #expect(Array(chunk(320).prefix(5)) == Array("140\r\n".utf8))
        #expect(Array(chunk(4096).prefix(6)) == Array("1000\r\n".utf8))
        #expect(chunk(320).count == 3 + 2 + 320 + 2)
        #expect(HTTPChunkedEncoding.lastChunk == Array("0\r\n\r\n".utf8))
    }
}

extension HTTPRequestStateMachineTests {
    @Test func errorBodyOfAStreamingRequestIsBoundedOnDemand() {
        var m = M(limits: .init())
        #expect(m.start(body: .streaming, now: 0) == .writeHead(checkAfter: nil))
        #expect(m.boundResponseIdle(100, now: 5, pendingBytes: 0) == .none, "no response yet")
        #expect(m.responseHead(now: 10) == .deliverHead)
        #expect(m.boundResponseIdle(100, now: 10, pendingBytes: 0) == .checkAfter(100))
        #expect(m.responseBody(now: 50) == .deliverBody)
        #expect(m.check(now: 110, pendingBytes: 0) == .checkAfter(40))
        #expect(m.check(now: 150, pendingBytes: 0) == .fail(.responseIdle(milliseconds: 100)))
    }
}
