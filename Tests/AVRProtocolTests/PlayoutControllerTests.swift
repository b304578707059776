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
    /// (time, samples still queued) after each speech frame: the delay left behind it.
    var backlog: [(UInt64, Int)] = []
    var stalls = 0

    static func ns(_ milliseconds: Double) -> UInt64 { UInt64(milliseconds * 1_000_000) }

    static func label(_ time: UInt64) -> String {
        let tenths = time / 100_000
        return tenths % 10 == 0 ? "\(tenths / 10)" : "\(tenths / 10).\(tenths % 10)"
    }

    /// Raw s16le bytes arriving at `time`; a due frame goes out at once (its sample count is
    /// returned, 0 for none).
    @discardableResult
    mutating func arrive(bytes: [UInt8], at time: UInt64) -> Int {
        let arrival = bytes.withUnsafeBytes { playout.append(pcmLittleEndian: $0, now: time) }
        if arrival.stall {
            stalls += 1
            transcript.append("\(Self.label(time)) stall")
        }
        guard arrival.frameDue else { return 0 }
        let count = frame.withUnsafeMutableBufferPointer { playout.promptFrame(into: $0, now: time) }
        if count > 0 { record(count, at: time, "prompt") }
        return count
    }

    /// Arrivals and ticks as `PlaybackScheduler` gives them: slot deadlines 5 ms apart, the
    /// call's every 20 ms from `firstDeadline`; after a prompt frame the call moves to the
    /// first slot deadline at or after the frame's end minus 1 ms. Runs up to `end` (ns).
    mutating func run(_ arrivals: [(UInt64, [UInt8])], until end: UInt64, firstDeadline: UInt64 = 0) {
        var deadline = firstDeadline
        var next = 0
        while true {
            if next < arrivals.count && arrivals[next].0 < deadline {
                let (time, bytes) = arrivals[next]
                next += 1
                let count = arrive(bytes: bytes, at: time)
                if count > 0 {
                    let earliest = time + UInt64(count) * 125_000 - 1_000_000
                    deadline = (earliest + 4_999_999) / 5_000_000 * 5_000_000
                }
            } else if deadline <= end {
                tick(atNanoseconds: deadline, streamOpen: true)
                deadline += 20_000_000
            } else {
                return
            }
        }
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
        backlog.append((time, playout.queuedSamples))
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
        // Held while the stream may still be coming (what it queued, 60 ms, and 40 ms).
        call.tick(at: 86.5)
        call.tick(at: 106.5)
        call.tick(at: 126.5)
        call.tick(at: 146.5)
        #expect(call.transcript == ["0 silence", "20 silence", "27.5 prompt 160", "40 -", "46.5 speech 160",
                                    "66.5 speech 160", "86.5 -", "106.5 -", "126.5 -", "146.5 silence"])
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

    /// The echo of a caller whose Asterisk sent one 276-byte frame among 320-byte ones, paced
    /// by samples as Asterisk does (the next frame 17.25 ms after it): the 138-sample frame
    /// goes out as it came, short, and the next one as soon as it has played, so every frame
    /// leaves as it arrives, before and after (no 2.75 ms per short frame, no padding).
    @Test func a276ByteFrameGoesOutShortAndAddsNoDelay() {
        var call = PlayoutHarness()
        var arrivals: [(UInt64, [UInt8])] = []
        var time: UInt64 = 2_000_000
        var next = 0
        for size in [160, 160, 138, 160, 160, 138, 160] {
            arrivals.append((time, TestSignal.littleEndianBytes(speech(from: next, count: size))))
            next += size
            time += UInt64(size) * 125_000
        }
        call.run(arrivals, until: PlayoutHarness.ns(150), firstDeadline: PlayoutHarness.ns(10))
        #expect(call.transcript == ["2 prompt 160", "22 prompt 160", "42 prompt 138", "59.2 prompt 160",
                                    "79.2 prompt 160", "99.2 prompt 138", "116.5 prompt 160", "140 -"])
        #expect(call.played == speech(from: 0, count: next))
        #expect(call.speechTimes == arrivals.map(\.0))
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
        #expect(call.transcript == ["0 prompt 160", "20 speech 80", "40 -", "45 prompt 160", "65 speech 160"])
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
        #expect(call.transcript == ["0 prompt 160", "20 -", "40 -", "60 silence", "80 silence"])
    }

    /// Beeps of 40 ms every 500 ms, as a caller's echo: what the STS returns in real time.
    static func beeps(from start: Int, count: Int) -> [Int16] {
        (start..<(start + count)).map { $0 % 4000 < 320 ? Int16(1000 + $0 % 20000) : 0 }
    }

    /// An echo STS streaming `content` in real time (160 samples every 20 ms) stalls from 1 s
    /// to 4 s; what it held leaves at the stall's end in `pieces` messages `spacing` ns apart,
    /// and its own frames come behind the last piece (one connection, in order).
    static func stalledStream(_ content: [Int16], pieces: Int, spacing: UInt64) -> [(UInt64, [UInt8])] {
        let stallStart = PlayoutHarness.ns(1000), stallEnd = PlayoutHarness.ns(4000)
        var arrivals: [(UInt64, [UInt8])] = []
        var held: [Int16] = []
        for k in 0..<(content.count / 160) {
            let time = UInt64(k) * 20_000_000
            let chunk = Array(content[(k * 160)..<((k + 1) * 160)])
            if time >= stallStart && time < stallEnd {
                held += chunk
                continue
            }
            if !held.isEmpty {
                let piece = held.count / pieces
                for p in 0..<pieces {
                    let part = Array(held[(p * piece)..<(p == pieces - 1 ? held.count : (p + 1) * piece)])
                    arrivals.append((time + UInt64(p) * spacing, TestSignal.littleEndianBytes(part)))
                }
                held = []
            }
            let after = (arrivals.last?.0).map { $0 + 1 } ?? 0
            arrivals.append((max(time, after), TestSignal.littleEndianBytes(chunk)))
        }
        return arrivals
    }

    /// An echo STS stalls 3 s, then delivers everything it held at once and streams on: one
    /// stall is reported, the silence played meanwhile is taken back from the pauses of what
    /// follows within 2 s, and every beep plays, in order.
    @Test func a3SecondStallIsPaidBackFromSilenceWithin2Seconds() {
        var call = PlayoutHarness()
        let content = Self.beeps(from: 0, count: 8 * 8000)
        call.run(Self.stalledStream(content, pieces: 1, spacing: 0), until: PlayoutHarness.ns(8000),
                 firstDeadline: PlayoutHarness.ns(10))
        #expect(call.stalls == 1)
        #expect(call.playout.maximumAddedDelaySamples >= 3 * 8000 - 480)
        #expect(call.playout.paidBackSamples >= 3 * 8000 - 480)
        // Within 2 s of the burst, nothing is left queued behind a frame: back to real time.
        let late = call.backlog.filter { $0.0 >= PlayoutHarness.ns(6000) }
        #expect(late.count > 50)
        #expect(late.allSatisfy { $0.1 <= 160 })
        // Nothing loud lost or reordered.
        #expect(call.played.filter { $0 != 0 } == content.filter { $0 != 0 })
    }

    /// The same stall, but the peer (or a busy loop) hands the held 3 s over in ten pieces
    /// 12 ms apart, the burst spread over more than a frame's time: all of it still counts as
    /// owed and is paid back within 2 s (counting only the first 20 ms left over a second of
    /// delay for the rest of the call).
    @Test func aStallBurstSpreadOver100MillisecondsIsPaidBackAsWell() {
        var call = PlayoutHarness()
        let content = Self.beeps(from: 0, count: 8 * 8000)
        call.run(Self.stalledStream(content, pieces: 10, spacing: 12_000_000), until: PlayoutHarness.ns(8000),
                 firstDeadline: PlayoutHarness.ns(10))
        #expect(call.stalls == 1)
        #expect(call.playout.paidBackSamples >= 3 * 8000 - 480)
        let late = call.backlog.filter { $0.0 >= PlayoutHarness.ns(6200) }
        #expect(late.count > 50)
        #expect(late.allSatisfy { $0.1 <= 160 })
        #expect(call.played.filter { $0 != 0 } == content.filter { $0 != 0 })
    }

    /// A TTS 10 s ahead: everything plays, silence included, one frame per tick.
    /// Ticks that never sent (skipped by the pacing clock on a loop that fell behind) while the
    /// agent's frames were queued on time, every 20 ms, with nothing sending them at once
    /// (arrivals here are queued without a prompt frame): five frames wait that arrived on
    /// time. Rules 1–4 see no silence to take back; rule 5 sends one extra frame per tick
    /// until the queue is back within a frame (and a slot) of the agent's schedule, and every
    /// sample goes out once, in order. Without it the 100 ms would stay for the rest of the call.
    @Test func ticksTheLoopSkippedAreCaughtUpOneExtraFramePerTick() {
        var call = PlayoutHarness()
        var next = 0
        var catchUps = 0
        var time: Double = 1
        func queueFrame() {
            let bytes = TestSignal.littleEndianBytes(speech(from: next, count: 160))
            _ = bytes.withUnsafeBytes { call.playout.append(pcmLittleEndian: $0, now: PlayoutHarness.ns(time)) }
            next += 160
        }
        func tickWithCatchUp() {
            if case .speech = call.tick(at: time + 4) {
                var frame = [Int16](repeating: 0, count: 160)
                let count = frame.withUnsafeMutableBufferPointer {
                    call.playout.catchUpFrame(into: $0, now: PlayoutHarness.ns(time + 4.1))
                }
                if count > 0 {
                    catchUps += 1
                    call.played += frame[0..<count]
                }
            }
        }
        // On time: each frame waits 4 ms for its tick, nothing to catch up.
        for _ in 0..<10 {
            queueFrame()
            tickWithCatchUp()
            time += 20
        }
        #expect(catchUps == 0)
        // Five ticks skipped while five frames are queued on time.
        for _ in 0..<5 {
            queueFrame()
            time += 20
        }
        let behind = call.playout.lateness(at: PlayoutHarness.ns(time))
        #expect(behind >= 100_000_000, "\(behind) ns behind after the skipped ticks")
        for _ in 0..<10 {
            queueFrame()
            tickWithCatchUp()
            time += 20
        }
        #expect(catchUps == 4, "one extra frame per tick until within a frame and a slot: \(catchUps)")
        let left = call.playout.lateness(at: PlayoutHarness.ns(time - 15.9))
        #expect(left <= 25_000_000, "\(left) ns behind at the end")
        #expect(call.played == speech(from: 0, count: call.played.count))
        #expect(call.played.count + call.playout.queuedSamples == next)
        #expect(call.playout.catchUpFrames == catchUps)
    }

    /// Audio queued far ahead is on the agent's schedule however long it waits: no catch-up.
    @Test func audioQueuedAheadIsNeverCaughtUp() {
        var call = PlayoutHarness()
        call.arrive(speech(from: 0, count: 8000 * 3), at: 0)
        var extra = 0
        var time: Double = 20
        for _ in 0..<100 {
            if case .speech = call.tick(at: time) {
                var frame = [Int16](repeating: 0, count: 160)
                extra += frame.withUnsafeMutableBufferPointer {
                    call.playout.catchUpFrame(into: $0, now: PlayoutHarness.ns(time + 0.1))
                }
            }
            time += 20
        }
        #expect(extra == 0)
        #expect(call.played == speech(from: 0, count: 160 * 101))
    }

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

extension PlayoutControllerTests {
    /// A tail that is really the end (its audio arrived long before) is padded to a whole
    /// frame, as is one left when the stream closed.
    @Test func theLastTailIsPaddedToAWholeFrame() {
        var call = PlayoutHarness()
        call.arrive(speech(from: 0, count: 400), at: 0)
        call.tick(at: 20)
        call.tick(at: 100)  // past the hold window (50 ms queued and 40 ms): the real end
        #expect(call.transcript == ["0 prompt 160", "20 speech 160", "100 speech 160"])
        #expect(call.played == speech(from: 0, count: 400) + Array(repeating: 0, count: 80))
        var closed = PlayoutHarness()
        closed.arrive(speech(from: 0, count: 200), at: 0)
        closed.tick(at: 20, streamOpen: false)
        #expect(closed.transcript == ["0 prompt 160", "20 speech 160"])
        #expect(closed.playout.shortFrames == 0)
    }
}

extension PlayoutControllerTests {
    /// An idle call does not send a burst's small first message on its own: the whole first
    /// frame goes as soon as the next message completes it.
    @Test func anIdleCallWaitsForAWholeFirstFrame() {
        var call = PlayoutHarness()
        call.tick(at: 0)
        call.arrive(speech(from: 0, count: 125), at: 5)
        #expect(call.transcript == ["0 silence"])
        call.arrive(speech(from: 125, count: 125), at: 5.1)
        call.tick(at: 25.1)
        #expect(call.transcript == ["0 silence", "5.1 prompt 160", "25.1 speech 90"])
    }
}

extension PlayoutControllerTests {
    /// A real-time stream ends (the hold runs out: counted as an underrun), and 2 s later a
    /// new answer comes at twice real time: it brings about a frame at once, so nothing is
    /// owed and its pauses play as sent.
    @Test func aNewAnswerAtItsOwnPaceAfterAnUnderrunOwesNothing() {
        var call = PlayoutHarness()
        var arrivals: [(UInt64, [UInt8])] = []
        let first = Self.beeps(from: 0, count: 8000)
        for k in 0..<50 {
            arrivals.append((UInt64(k) * 20_000_000, TestSignal.littleEndianBytes(Array(first[(k * 160)..<((k + 1) * 160)]))))
        }
        let second = Self.beeps(from: 0, count: 16000)
        let bytes = TestSignal.littleEndianBytes(second)
        var offset = 0
        var time: UInt64 = 3_000_000_000
        while offset < bytes.count {
            let end = min(offset + 333, bytes.count)
            arrivals.append((time, Array(bytes[offset..<end])))
            offset = end
            time += 10_406_250
        }
        call.run(arrivals, until: 6_000_000_000, firstDeadline: 5_000_000)
        #expect(call.playout.paidBackSamples == 0)
        #expect(call.played.prefix(8000 + 16000) == (first + second)[...])
    }
}
