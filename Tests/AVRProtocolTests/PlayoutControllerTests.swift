import Testing
@testable import AVRProtocol

/// Drives a `PlayoutController` the way a call does (arrivals from the STS, ticks from the
/// scheduler) and writes down what went out, as a transcript of "time(ms) what".
struct PlayoutHarness {
    var playout = PlayoutController(queue: PlaybackQueue(capacityLimit: 30 * 8000, initialCapacity: 960))
    var frame = [Int16](repeating: 0x7777, count: 160)
    var transcript: [String] = []
    /// Every speech sample sent, in order.
    var played: [Int16] = []
    /// When each speech frame went out (ns).
    var speechTimes: [UInt64] = []
    var stalls = 0

    static func ns(_ milliseconds: Double) -> UInt64 { UInt64(milliseconds * 1_000_000) }

    static func label(_ time: UInt64) -> String {
        let tenths = time / 100_000
        return tenths % 10 == 0 ? "\(tenths / 10)" : "\(tenths / 10).\(tenths % 10)"
    }

    /// Raw s16le bytes arriving at `time`; a due first frame goes out at once.
    mutating func arrive(bytes: [UInt8], at time: UInt64) {
        let arrival = bytes.withUnsafeBytes { playout.append(pcmLittleEndian: $0, now: time) }
        if arrival.stall {
            stalls += 1
            transcript.append("\(Self.label(time)) stall")
        }
        guard arrival.frameDue else { return }
        let count = frame.withUnsafeMutableBufferPointer { playout.promptFrame(into: $0, now: time) }
        if count > 0 { record(count, at: time, "prompt") }
    }

    mutating func arrive(_ samples: [Int16], at milliseconds: Double) {
        arrive(bytes: TestSignal.littleEndianBytes(samples), at: Self.ns(milliseconds))
    }

    @discardableResult
    mutating func tick(atNanoseconds time: UInt64, streamOpen: Bool = true) -> PlayoutController.Output {
        let output = frame.withUnsafeMutableBufferPointer { playout.tick(at: time, into: $0, streamOpen: streamOpen) }
        switch output {
        case .speech(let count): record(count, at: time, "speech")
        case .silence: transcript.append("\(Self.label(time)) silence")
        case .nothing: transcript.append("\(Self.label(time)) -")
        }
        return output
    }

    @discardableResult
    mutating func tick(at milliseconds: Double, streamOpen: Bool = true) -> PlayoutController.Output {
        tick(atNanoseconds: Self.ns(milliseconds), streamOpen: streamOpen)
    }

    private mutating func record(_ count: Int, at time: UInt64, _ kind: String) {
        transcript.append("\(Self.label(time)) \(kind) \(count)")
        played += frame[0..<count]
        speechTimes.append(time)
    }
}

/// A recognisable loud sample sequence: sample i of the whole stream is 1000 + i % 20000.
func speech(from start: Int, count: Int) -> [Int16] {
    (start..<(start + count)).map { Int16(1000 + $0 % 20000) }
}

@Suite struct PlayoutControllerTests {
    @Test func firstFrameAfterSilenceGoesAtOnceAndTheGridRestartsThere() {
        var call = PlayoutHarness()
        call.tick(at: 0)
        call.tick(at: 20)
        call.arrive(speech(from: 0, count: 480), at: 27.5)
        call.tick(at: 40)    // less than a frame after the prompt frame: nothing
        call.tick(at: 46.5)  // the grid from 27.5, a slot deadline within the tolerance
        call.tick(at: 66.5)
        call.tick(at: 86.5)
        #expect(call.transcript == ["0 silence", "20 silence", "27.5 prompt 160", "40 -", "46.5 speech 160",
                                    "66.5 speech 160", "86.5 silence"])
        #expect(call.played == speech(from: 0, count: 480))
        #expect(call.playout.promptFrames == 1)
    }

    @Test func aFullFrameArrivingWhilePlayingWaitsForTheGrid() {
        var call = PlayoutHarness()
        call.arrive(speech(from: 0, count: 160), at: 0)
        call.arrive(speech(from: 160, count: 160), at: 5)
        call.tick(at: 20)
        #expect(call.transcript == ["0 prompt 160", "20 speech 160"])
    }

    /// The echo of a caller whose Asterisk sent one 276-byte frame among 320-byte ones: the
    /// 138-sample tail goes out as a short frame; nothing is padded, so the frames after it
    /// go out as soon after arrival as those before it (no 2.75 ms per short frame).
    @Test func a276ByteTailGoesOutShortNotPadded() {
        var call = PlayoutHarness()
        var next = 0
        for (k, size) in [160, 160, 138, 160, 160].enumerated() {
            call.arrive(speech(from: next, count: size), at: Double(k * 20) + 0.5)
            next += size
            if k > 0 { call.tick(at: Double(k * 20) + 1) }
        }
        #expect(call.transcript == ["0.5 prompt 160", "21 speech 160", "41 speech 138", "61 speech 160", "81 speech 160"])
        #expect(call.played == speech(from: 0, count: next))
        #expect(call.playout.shortFrames == 1)
        #expect(call.playout.addedDelaySamples == 0)
    }

    /// An 80-sample (160-byte) tail, then a sample split across two messages (a 1-byte tail).
    @Test func a160ByteTailAndA1ByteTail() {
        var call = PlayoutHarness()
        call.arrive(speech(from: 0, count: 240), at: 0)
        call.tick(at: 20)
        call.tick(at: 40)
        // 321 bytes: 160 samples and one byte of the next; 319 bytes complete 160 more.
        let bytes = TestSignal.littleEndianBytes(speech(from: 240, count: 320))
        call.arrive(bytes: Array(bytes[0..<321]), at: PlayoutHarness.ns(45))
        #expect(call.playout.queuedSamples == 0)
        call.arrive(bytes: Array(bytes[321...]), at: PlayoutHarness.ns(50))
        call.tick(at: 65)
        #expect(call.transcript == ["0 prompt 160", "20 speech 80", "40 silence", "45 prompt 160", "65 speech 160"])
        #expect(call.played == speech(from: 0, count: 560))
    }

    /// The STS is late by a few ms: the dry tick holds (sends nothing) and the frame goes out
    /// the moment it arrives, instead of behind 20 ms of silence for the rest of the stream.
    @Test func underflowWhileStreamingHoldsAndDelayStaysOneFrameAtMost() {
        var call = PlayoutHarness()
        call.arrive(speech(from: 0, count: 160), at: 0)
        call.tick(at: 19)            // due, dry, the STS streams: hold
        call.arrive(speech(from: 160, count: 160), at: 23)
        call.tick(at: 42)
        call.arrive(speech(from: 320, count: 160), at: 43)
        call.tick(at: 62)
        #expect(call.transcript == ["0 prompt 160", "19 -", "23 prompt 160", "42 -", "43 prompt 160", "62 -"])
        #expect(call.playout.addedDelaySamples == 0)
        #expect(call.playout.heldTicks == 3)
    }

    /// The turn ends: after the hold the call goes back to silence.
    @Test func endOfStreamFallsBackToSilence() {
        var call = PlayoutHarness()
        call.arrive(speech(from: 0, count: 160), at: 0)
        call.tick(at: 20)
        call.tick(at: 40)
        call.tick(at: 60)
        call.tick(at: 80, streamOpen: false)
        #expect(call.transcript == ["0 prompt 160", "20 -", "40 silence", "60 silence", "80 silence"])
    }

    /// Beeps of 40 ms every 500 ms, as a caller's echo: what the STS returns in real time.
    static func beeps(from start: Int, count: Int) -> [Int16] {
        (start..<(start + count)).map { $0 % 4000 < 320 ? Int16(1000 + $0 % 20000) : 0 }
    }

    /// An echo STS stalls 3 s, then delivers everything it held at once and streams on: one
    /// stall is reported, the silence played meanwhile is taken back from the pauses of what
    /// follows within 2 s, and every beep plays, in order.
    @Test func a3SecondStallIsPaidBackFromSilenceWithin2Seconds() {
        var call = PlayoutHarness()
        var content = 0  // samples the STS has produced
        var sentByTheSTS: [Int16] = []
        var delays: [(UInt64, Int)] = []
        var tick: UInt64 = PlayoutHarness.ns(10)
        func produce(_ count: Int) -> [Int16] {
            let chunk = Self.beeps(from: content, count: count)
            content += count
            sentByTheSTS += chunk
            return chunk
        }
        var time: UInt64 = 0
        var held: [Int16] = []
        let stallStart = PlayoutHarness.ns(1000), stallEnd = PlayoutHarness.ns(4000)
        while time < PlayoutHarness.ns(8000) {
            // Real time: 160 samples every 20 ms; during the stall they are held back.
            let chunk = produce(160)
            if time >= stallStart && time < stallEnd {
                held += chunk
            } else {
                if !held.isEmpty {
                    call.arrive(bytes: TestSignal.littleEndianBytes(held), at: time)
                    held = []
                }
                call.arrive(bytes: TestSignal.littleEndianBytes(chunk), at: time)
            }
            while tick < time + PlayoutHarness.ns(20) {
                let queuedBefore = call.playout.queuedSamples
                if case .speech = call.tick(atNanoseconds: tick) { delays.append((tick, queuedBefore)) }
                tick += PlayoutHarness.ns(20)
            }
            time += PlayoutHarness.ns(20)
        }
        #expect(call.stalls == 1)
        #expect(call.playout.maximumAddedDelaySamples >= 3 * 8000 - 480)
        // Within 2 s of the burst, the queue is back to at most a frame behind real time.
        let late = delays.filter { $0.0 >= stallEnd + PlayoutHarness.ns(2000) }
        #expect(!late.isEmpty)
        #expect(late.allSatisfy { $0.1 <= 2 * 160 })
        #expect(call.playout.paidBackSamples >= 3 * 8000 - 480)
        // Nothing loud lost or reordered.
        let heard = call.played.filter { $0 != 0 }
        let sent = sentByTheSTS.filter { $0 != 0 }
        #expect(heard.count > sent.count - 320)
        #expect(heard == Array(sent.prefix(heard.count)))
    }

    /// A TTS 10 s ahead: everything plays, silence included, one frame per tick.
    @Test func a10SecondBurstAheadPlaysInFull() {
        var call = PlayoutHarness()
        call.tick(at: 0)
        let answer = Self.beeps(from: 0, count: 10 * 8000)
        // In 100 ms messages within 50 ms.
        for k in 0..<100 {
            call.arrive(bytes: TestSignal.littleEndianBytes(Array(answer[(k * 800)..<((k + 1) * 800)])), at: PlayoutHarness.ns(3 + Double(k) * 0.5))
        }
        var time = PlayoutHarness.ns(22)
        while !call.playout.isEmpty {
            call.tick(atNanoseconds: time)
            time += PlayoutHarness.ns(20)
        }
        #expect(call.played == answer)
        #expect(call.playout.paidBackSamples == 0)
        #expect(call.stalls == 0)
        // One speech frame per 20 ms after the prompt one.
        #expect(zip(call.speechTimes, call.speechTimes.dropFirst()).allSatisfy { $1 - $0 >= PlayoutHarness.ns(19) })
    }

    /// A turn that played out long after it arrived and ended quietly is a finished turn: the
    /// silence after it is not owed, and the next answer's pauses play as sent.
    @Test func silenceAfterAFinishedTurnIsNotAddedDelay() {
        var call = PlayoutHarness()
        let first = Self.beeps(from: 0, count: 8000)
        call.arrive(first, at: 0)
        var time = 20.0
        for _ in 0..<150 {
            call.tick(at: time)
            time += 20
        }
        let second = Self.beeps(from: 0, count: 8000)
        call.arrive(second, at: time - 5)
        for _ in 0..<60 {
            call.tick(at: time)
            time += 20
        }
        #expect(call.played == first + second)
        #expect(call.playout.paidBackSamples == 0)
    }

    @Test func clearDropsTheQueueAndAnyAddedDelay() {
        var call = PlayoutHarness()
        call.arrive(speech(from: 0, count: 800), at: 0)
        call.tick(at: 20)
        call.playout.clear()
        #expect(call.playout.isEmpty)
        // Less than a frame after the last speech frame: the next tick plays it.
        call.arrive(speech(from: 0, count: 160), at: 30)
        #expect(call.transcript.last == "20 speech 160")
        call.tick(at: 40)
        #expect(call.transcript.last == "40 speech 160")
    }
}
