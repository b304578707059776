import Testing
@testable import AVRProtocol

/// `WS_MEDIA_PACING=asterisk`: the estimate of the WebSocket channel's queue of our frames,
/// `MEDIA_XOFF`/`MEDIA_XON`, and the playout controller's frames sent ahead.
struct ChannelQueuePacerTests {
    static let ms: UInt64 = 1_000_000

    @Test func aBurstQueuesOneIntervalPerFrameAndDrainsInRealTime() {
        var pacer = ChannelQueuePacer()
        let start = 1_000 * Self.ms
        for _ in 0..<50 { pacer.sent(at: start) }
        #expect(pacer.held(at: start) == 1_000 * Self.ms)
        #expect(pacer.queuedFrames(at: start) == 50)
        // Half a frame played: it still counts; 10 ms later it has gone.
        #expect(pacer.queuedFrames(at: start + 10 * Self.ms) == 50)
        #expect(pacer.queuedFrames(at: start + 20 * Self.ms) == 49)
        #expect(!pacer.nearlyDrained(at: start + 980 * Self.ms - 1))
        #expect(pacer.nearlyDrained(at: start + 980 * Self.ms + 1))
        #expect(pacer.held(at: start + 2_000 * Self.ms) == 0)
        // A frame sent after the queue ran dry plays from when it was sent.
        pacer.sent(at: start + 2_000 * Self.ms)
        #expect(pacer.playedUntil == start + 2_020 * Self.ms)
    }

    @Test func theEstimateStopsAtItsLimitAndMakesRoomAsFramesPlay() {
        var pacer = ChannelQueuePacer(limitFrames: 950)
        let start = 5_000 * Self.ms
        var sent = 0
        while pacer.mayWrite(at: start) {
            pacer.sent(at: start)
            sent += 1
        }
        #expect(sent == 950)
        #expect(!pacer.mayWrite(at: start + 19 * Self.ms))
        #expect(pacer.mayWrite(at: start + 20 * Self.ms))
    }

    @Test func xoffStopsWhateverTheEstimateSaysUntilXon() {
        var pacer = ChannelQueuePacer()
        let now = 100 * Self.ms
        pacer.sent(at: now)
        pacer.xoff()
        #expect(!pacer.mayWrite(at: now))
        // The channel's timer stalled: our estimate says empty, the channel says full.
        #expect(!pacer.mayWrite(at: now + 10_000 * Self.ms))
        pacer.xon()
        #expect(pacer.mayWrite(at: now))
    }

    @Test func aFlushEmptiesTheEstimate() {
        var pacer = ChannelQueuePacer()
        let now = 100 * Self.ms
        for _ in 0..<300 { pacer.sent(at: now) }
        pacer.flushed(at: now + 100 * Self.ms)
        #expect(pacer.held(at: now + 100 * Self.ms) == 0)
        #expect(pacer.nearlyDrained(at: now + 100 * Self.ms))
        // A flush of an empty queue does not move the estimate forward.
        var idle = ChannelQueuePacer()
        idle.flushed(at: now)
        #expect(idle.playedUntil == 0)
    }

    @Test func aheadFramesTakeEveryWholeFrameAndLeaveTheTail() {
        var playout = PlayoutController(queue: PlaybackQueue(capacityLimit: 30 * 8000, initialCapacity: 960))
        let samples = (0..<(5 * 160 + 40)).map { Int16(truncatingIfNeeded: 1000 + $0) }
        let bytes = samples.flatMap { [UInt8(truncatingIfNeeded: $0), UInt8(truncatingIfNeeded: $0 >> 8)] }
        _ = bytes.withUnsafeBytes { playout.append(pcmLittleEndian: $0, now: 10 * Self.ms) }
        var frame = [Int16](repeating: 0, count: 160)
        var played: [Int16] = []
        var counts: [Int] = []
        while true {
            let count = frame.withUnsafeMutableBufferPointer { playout.aheadFrame(into: $0, now: 10 * Self.ms) }
            if count == 0 { break }
            counts.append(count)
            played += frame[0..<count]
        }
        #expect(counts == [160, 160, 160, 160, 160])
        #expect(played == Array(samples[0..<800]))
        #expect(playout.queuedSamples == 40)
        #expect(playout.aheadFrames == 5)
        // The tail goes at a tick, padded once the stream is over.
        let output = frame.withUnsafeMutableBufferPointer { playout.tick(at: 30 * Self.ms, into: $0, streamOpen: false) }
        #expect(output == .speech(160))
        #expect(Array(frame[0..<40]) == Array(samples[800...]))
        #expect(frame[40..<160].allSatisfy { $0 == 0 })
    }

    @Test func wsMediaPacingIsValidated() throws {
        #expect(try Configuration.parse(environment: [:]) { _ in true }.mediaPacing == .core)
        #expect(try Configuration.parse(environment: ["WS_MEDIA_PACING": "Asterisk"]) { _ in true }.mediaPacing == .asterisk)
        #expect(throws: ConfigurationError(variable: "WS_MEDIA_PACING", value: "fast", problem: .unknownMediaPacing)) {
            try Configuration.parse(environment: ["WS_MEDIA_PACING": "fast"]) { _ in true }
        }
    }
}
