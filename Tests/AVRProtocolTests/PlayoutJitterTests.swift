import Testing
@testable import AVRProtocol

/// The echo of an Asterisk caller on a real loop: arrivals carry a little transport jitter,
/// the scheduler's timer fires a little after each slot deadline (libuv counts whole
/// milliseconds), and the call's grid is 5 ms slots. What the core adds to each message's
/// way out (sent minus arrived) must not creep up over a call, whatever the slot phase, and
/// short frames (276 bytes, where Asterisk joins two played files) must not ratchet it.
@Suite struct PlayoutJitterTests {
    /// A small deterministic generator (SplitMix64), so a failing seed can be replayed.
    struct Generator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        /// Uniform in 0..<bound.
        mutating func below(_ bound: UInt64) -> UInt64 { bound == 0 ? 0 : next() % bound }
    }

    struct Run {
        /// Per message: arrival (ns) and when its first sample went out (ns).
        var arrived: [UInt64] = []
        var sent: [UInt64?] = []
        var played: [Int16] = []
    }

    /// Messages of `sizes` samples paced by samples (as Asterisk paces its frames), echoed
    /// back with `arrivalJitter` of transport delay each; slots 5 ms apart starting at
    /// `slotPhase`; each tick fires up to `timerLateness` after its deadline.
    /// `spikes` in a thousand messages are held up 2-10 ms more (a busy loop or peer).
    static func run(sizes: [Int], seed: UInt64, slotPhase: UInt64, arrivalJitter: UInt64 = 1_500_000,
                    timerLateness: UInt64 = 1_000_000, spikes: UInt64 = 0) -> Run {
        var random = Generator(state: seed)
        var playout = PlayoutController(queue: PlaybackQueue(capacityLimit: 30 * 8000, initialCapacity: 960))
        var frame = [Int16](repeating: 0, count: 160)
        var run = Run()
        var content: [[Int16]] = []
        var ideal: UInt64 = 50_000_000
        var start = 0
        for size in sizes {
            // Jitter never reorders: a message cannot overtake the one before it.
            let spike = random.below(1000) < spikes ? 2_000_000 + random.below(8_000_000) : 0
            let arrival = max(ideal + 200_000 + random.below(arrivalJitter) + spike, run.arrived.last.map { $0 + 1 } ?? 0)
            run.arrived.append(arrival)
            run.sent.append(nil)
            content.append(speech(from: start, count: size))
            start += size
            ideal += UInt64(size) * 125_000
        }
        // Which message each sample came from, to date the first sample of every frame.
        var owner: [Int] = []
        for (index, size) in sizes.enumerated() { owner += Array(repeating: index, count: size) }

        let spacing: UInt64 = 5_000_000, interval: UInt64 = 20_000_000
        var deadline = slotPhase + 40_000_000
        var lateness = random.below(timerLateness)
        var next = 0
        let end = ideal + 200_000_000
        func record(_ count: Int, at time: UInt64, _ run: inout Run, _ frame: [Int16]) {
            let first = run.played.count
            run.played += frame[0..<count]
            if first < owner.count, run.sent[owner[first]] == nil { run.sent[owner[first]] = time }
        }
        while deadline <= end {
            if next < run.arrived.count && run.arrived[next] < deadline + lateness {
                let now = run.arrived[next]
                let arrival = TestSignal.littleEndianBytes(content[next]).withUnsafeBytes {
                    playout.append(pcmLittleEndian: $0, now: now)
                }
                next += 1
                guard arrival.frameDue else { continue }
                let count = frame.withUnsafeMutableBufferPointer { playout.promptFrame(into: $0, now: now) }
                guard count > 0 else { continue }
                record(count, at: now, &run, frame)
                // PlaybackScheduler.rephase: the first slot deadline at or after the frame's
                // end minus the tolerance.
                let earliest = now + UInt64(count) * 125_000 - 1_000_000
                let slots = (earliest - slotPhase + spacing - 1) / spacing
                deadline = slotPhase + slots * spacing
                lateness = random.below(timerLateness)
            } else {
                let fired = deadline + lateness
                let output = frame.withUnsafeMutableBufferPointer { playout.tick(at: deadline, into: $0, streamOpen: true) }
                if case .speech(let count) = output { record(count, at: fired, &run, frame) }
                let extra = frame.withUnsafeMutableBufferPointer { playout.catchUpFrame(into: $0, now: fired) }
                if extra > 0 { record(extra, at: fired, &run, frame) }
                deadline += interval
                lateness = random.below(timerLateness)
            }
        }
        return run
    }

    static func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        return sorted.isEmpty ? 0 : sorted[sorted.count / 2]
    }

    /// Delay added to messages `range` (ms), the median.
    static func addedDelay(_ run: Run, _ range: Range<Int>) -> Double {
        median(range.compactMap { index in run.sent[index].map { Double($0 - run.arrived[index]) / 1e6 } })
    }

    /// Never faster than real time: the audio sent before each message is at most 6 ms (a
    /// slot spacing and the tolerance) more than the time since the first frame went out.
    static func neverAheadOfRealTime(_ run: Run, sizes: [Int]) -> Bool {
        guard let first = run.sent.first ?? nil else { return false }
        var before: UInt64 = 0
        for (index, size) in sizes.enumerated() {
            if let sent = run.sent[index], before * 125_000 > sent - first + 6_000_000 { return false }
            before += UInt64(size)
        }
        return true
    }

    static let asteriskJoins: [Int] = (0..<200).map { [60, 100, 140].contains($0) ? 138 : 160 }

    @Test(arguments: [UInt64(0), 1_000_000, 2_000_000, 2_500_000, 3_000_000, 4_000_000, 4_900_000])
    func shortFramesDoNotRatchetTheDelayAtAnySlotPhase(phase: UInt64) {
        for seed in UInt64(1)...12 {
            let run = Self.run(sizes: Self.asteriskJoins, seed: seed &* 7919 &+ phase, slotPhase: phase)
            #expect(run.played == speech(from: 0, count: Self.asteriskJoins.reduce(0, +)))
            #expect(Self.neverAheadOfRealTime(run, sizes: Self.asteriskJoins), "seed \(seed)")
            let before = Self.addedDelay(run, 20..<60), after = Self.addedDelay(run, 150..<200)
            #expect(after <= 3.0 && after - before < 2.75,
                    "phase \(Double(phase) / 1e6) ms seed \(seed): added delay \(before) ms before, \(after) ms after")
        }
    }

    @Test(arguments: [UInt64(0), 2_500_000, 4_900_000])
    func wholeFramesStayWithinATimerTickAtAnySlotPhase(phase: UInt64) {
        for seed in UInt64(1)...12 {
            let sizes = Array(repeating: 160, count: 200)
            let run = Self.run(sizes: sizes, seed: seed &* 104_729 &+ phase, slotPhase: phase)
            #expect(run.played == speech(from: 0, count: 200 * 160))
            #expect(Self.neverAheadOfRealTime(run, sizes: sizes), "seed \(seed)")
            let late = Self.addedDelay(run, 100..<200)
            #expect(late <= 3.0, "phase \(Double(phase) / 1e6) ms seed \(seed): added delay \(late) ms")
        }
    }

    /// A loaded machine: 3 % of the messages come 2-10 ms late, ticks fire up to 2 ms late. Each late message is late on its own: the ones
    /// after it go as they come again, so over the call the median stays within a slot.
    @Test(arguments: [UInt64(0), 2_500_000, 4_900_000])
    func aLateMessageLeavesNoDelayBehind(phase: UInt64) {
        for seed in UInt64(1)...12 {
            let run = Self.run(sizes: Self.asteriskJoins, seed: seed &* 15_485_863 &+ phase, slotPhase: phase,
                               arrivalJitter: 2_000_000, timerLateness: 2_000_000, spikes: 30)
            #expect(run.played == speech(from: 0, count: Self.asteriskJoins.reduce(0, +)))
            #expect(Self.neverAheadOfRealTime(run, sizes: Self.asteriskJoins), "seed \(seed)")
            let late = Self.addedDelay(run, 20..<200)
            #expect(late <= 3.0, "phase \(Double(phase) / 1e6) ms seed \(seed): added delay \(late) ms")
        }
    }
}
