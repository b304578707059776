import Testing
@testable import AVRProtocol

/// Random arrival schedules against the playout rules: an STS streams 12 s of speech and
/// pauses in real time, cut into messages of assorted sizes (odd bytes included); for the
/// first 6 s it is disturbed (late messages, stalls of up to 2 s released in one burst), then
/// it streams on time. The scheduler is simulated as in avr-core: slot deadlines 5 ms apart
/// (the call's frames are told their nominal deadline), and a call moved to the slot nearest
/// its restarted grid after a prompt frame.
@Suite struct PlayoutPropertyTests {
    struct Schedule {
        var content: [Int16] = []
        /// (release time ns, bytes) in order.
        var messages: [(UInt64, [UInt8])] = []
        /// The last release of the disturbed part.
        var lastDisturbance: UInt64 = 0
        var longestMessage: UInt64 = 0
    }

    static func schedule(seed: UInt64) -> Schedule {
        var random = SplitMix64(seed: seed)
        var schedule = Schedule()
        while schedule.content.count < 12 * 8000 {
            let talk = Int.random(in: 160...1600, using: &random)
            for _ in 0..<talk {
                let magnitude = Int16.random(in: 200...20000, using: &random)
                schedule.content.append(Bool.random(using: &random) ? magnitude : -magnitude)
            }
            schedule.content += Array(repeating: 0, count: Int.random(in: 1600...6400, using: &random))
        }
        let bytes = TestSignal.littleEndianBytes(schedule.content)
        let sizes = [276, 320, 320, 320, 640, 1600, 75, 1, 333]
        var offset = 0
        var previous: UInt64 = 0
        var stallUntil: UInt64 = 0
        while offset < bytes.count {
            let size = min(sizes.randomElement(using: &random)!, bytes.count - offset)
            let end = offset + size
            // Real time: a message leaves when its last sample exists (16 bytes per ms).
            let onTime = UInt64(end) * 1_000_000 / 16
            var release = onTime
            let disturbed = onTime < 6_000_000_000
            if disturbed {
                // Stalls interrupt a stream that has started (one late from its very start
                // is not delay the core can know of).
                if stallUntil < onTime && onTime > 500_000_000 && Int.random(in: 0..<400, using: &random) == 0 {
                    stallUntil = onTime + UInt64.random(in: 200...2000, using: &random) * 1_000_000
                }
                release = max(onTime, stallUntil) + UInt64.random(in: 0...15_000_000, using: &random)
            }
            release = max(release, previous)
            previous = release
            if disturbed { schedule.lastDisturbance = release }
            schedule.longestMessage = max(schedule.longestMessage, UInt64(size) * 1_000_000 / 16)
            schedule.messages.append((release, Array(bytes[offset..<end])))
            offset = end
        }
        return schedule
    }

    struct Outcome {
        var heard: [Int16] = []
        /// (send time, content index of the frame's first sample, samples) per speech frame.
        var frames: [(UInt64, Int, Int)] = []
        var addedDelayLate: [Int] = []
    }

    static func run(_ schedule: Schedule) -> (Outcome, PlayoutController) {
        var playout = PlayoutController(queue: PlaybackQueue(capacityLimit: 30 * 8000, initialCapacity: 960))
        var outcome = Outcome()
        var frame = [Int16](repeating: 0, count: 160)
        let interval: UInt64 = 20_000_000, spacing: UInt64 = 5_000_000
        var deadline: UInt64 = 0  // the call's slot starts at 0
        var next = 0
        var consumed = 0  // content samples taken or skipped
        func record(_ count: Int, at time: UInt64, _ playout: PlayoutController, skippedBefore: Int) {
            consumed += playout.paidBackSamples - skippedBefore
            outcome.frames.append((time, consumed, count))
            outcome.heard += frame[0..<count]
            consumed += count
        }
        while next < schedule.messages.count || !playout.isEmpty {
            if next < schedule.messages.count && schedule.messages[next].0 < deadline {
                let (time, bytes) = schedule.messages[next]
                next += 1
                let arrival = bytes.withUnsafeBytes { playout.append(pcmLittleEndian: $0, now: time) }
                guard arrival.frameDue else { continue }
                let skipped = playout.paidBackSamples
                let count = frame.withUnsafeMutableBufferPointer { playout.promptFrame(into: $0, now: time) }
                guard count > 0 else { continue }
                record(count, at: time, playout, skippedBefore: skipped)
                // Rephase: the slot deadline that comes first once this frame has played, less 1 ms.
                let earliest = time + UInt64(count) * 125_000 - 1_000_000
                deadline = (earliest + spacing - 1) / spacing * spacing
                continue
            }
            let streamOpen = next < schedule.messages.count
            let skipped = playout.paidBackSamples
            if case .speech(let count) = frame.withUnsafeMutableBufferPointer({ playout.tick(at: deadline, into: $0, streamOpen: streamOpen) }) {
                record(count, at: deadline, playout, skippedBefore: skipped)
            }
            if deadline >= schedule.lastDisturbance + 2_000_000_000 { outcome.addedDelayLate.append(playout.addedDelaySamples) }
            deadline += interval
        }
        return (outcome, playout)
    }

    @Test func noAgentAudioLostOrReorderedAndAddedDelayComesBack() {
        for seed in UInt64(1)...120 {
            let schedule = Self.schedule(seed: seed)
            let (outcome, playout) = Self.run(schedule)
            // Everything loud plays, once, in order: only silent frames were skipped.
            #expect(outcome.heard.filter { $0 != 0 } == schedule.content.filter { $0 != 0 }, "seed \(seed)")
            // A speech frame may leave before the one before it has played only when the
            // agent's own schedule says it is due (the one before waited for the grid): never
            // more than that frame's length early.
            #expect(zip(outcome.frames, outcome.frames.dropFirst()).allSatisfy { $1.0 + 1_000_000 >= $0.0 }, "seed \(seed)")
            // And never faster than real time over a second (to within two frames: the window
            // starts at a frame, and early credits given back after frames that waited).
            for (index, first) in outcome.frames.enumerated() {
                let window = outcome.frames[index...].prefix { $0.0 < first.0 + 1_000_000_000 }
                #expect(window.reduce(0) { $0 + $1.2 } <= 8000 + 320, "seed \(seed)")
            }
            // Two seconds after the last disturbance: no added delay left, and each frame no
            // later after its real time than the longest message (it leaves when its last
            // sample exists), a frame and a slot of pacing, the 15 ms an on-time stream may
            // stay behind a late message it never ran dry after, and one frame of added delay.
            #expect(outcome.addedDelayLate.allSatisfy { $0 <= 160 }, "seed \(seed): \(outcome.addedDelayLate.max() ?? 0)")
            let bound = schedule.longestMessage + 60_000_000
            let late = outcome.frames.filter { $0.0 >= schedule.lastDisturbance + 2_000_000_000 }
            #expect(!late.isEmpty)
            let worst = late.map { Int64($0.0) - Int64($0.1) * 125_000 }.max() ?? 0
            #expect(worst <= Int64(bound), "seed \(seed): \(worst / 1_000_000) ms late, stalls \(playout.stalls)")
        }
    }
}
