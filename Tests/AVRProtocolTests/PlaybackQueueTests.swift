import Testing
@testable import AVRProtocol

@Suite struct PlaybackQueueTests {
    static func next(_ queue: inout PlaybackQueue, size: Int = 160) -> [Int16]? {
        var frame = [Int16](repeating: 0x7777, count: size)
        let sent = frame.withUnsafeMutableBufferPointer { queue.nextFrame(into: $0) }
        return sent ? frame : nil
    }

    @Test func emptyQueueLeavesTheFrameAlone() {
        var queue = PlaybackQueue()
        var frame = [Int16](repeating: 0x7777, count: 160)
        #expect(!frame.withUnsafeMutableBufferPointer { queue.nextFrame(into: $0) })
        #expect(frame.allSatisfy { $0 == 0x7777 })
        #expect(queue.isEmpty)
    }

    @Test func framesInOrderAndLastOnePadded() {
        var queue = PlaybackQueue()
        let samples: [Int16] = (0..<400).map { Int16($0 + 1) }
        TestSignal.littleEndianBytes(samples).withUnsafeBytes { queue.append(pcmLittleEndian: $0) }
        #expect(queue.queuedSamples == 400)
        #expect(Self.next(&queue) == Array(samples[0..<160]))
        #expect(Self.next(&queue) == Array(samples[160..<320]))
        #expect(Self.next(&queue) == Array(samples[320..<400]) + Array(repeating: 0, count: 80))
        #expect(Self.next(&queue) == nil)
        #expect(queue.queuedSamples == 0)
    }

    @Test func oddByteWaitsForTheNextAppend() {
        var queue = PlaybackQueue()
        // 0x1234, 0x5678, -2 split as [34 12 78] [56 FE] [FF].
        [UInt8(0x34), 0x12, 0x78].withUnsafeBytes { queue.append(pcmLittleEndian: $0) }
        #expect(queue.queuedSamples == 1)
        [UInt8(0x56), 0xFE].withUnsafeBytes { queue.append(pcmLittleEndian: $0) }
        #expect(queue.queuedSamples == 2)
        [UInt8(0xFF)].withUnsafeBytes { queue.append(pcmLittleEndian: $0) }
        #expect(queue.queuedSamples == 3)
        #expect(Self.next(&queue, size: 3) == [0x1234, 0x5678, -2])
    }

    @Test func byteByByteEqualsWhole() {
        let samples: [Int16] = (0..<333).map { Int16(truncatingIfNeeded: $0 &* 977) }
        let bytes = TestSignal.littleEndianBytes(samples)
        var queue = PlaybackQueue(initialCapacity: 4)
        for byte in bytes { [byte].withUnsafeBytes { queue.append(pcmLittleEndian: $0) } }
        var out: [Int16] = []
        while let frame = Self.next(&queue) { out += frame }
        #expect(out == samples + Array(repeating: 0, count: 480 - 333))
    }

    @Test func clearDropsEverythingIncludingAHalfSample() {
        var queue = PlaybackQueue()
        [UInt8](repeating: 0x11, count: 1001).withUnsafeBytes { queue.append(pcmLittleEndian: $0) }
        #expect(queue.queuedSamples == 500)
        queue.clear()
        #expect(queue.queuedSamples == 0)
        #expect(Self.next(&queue) == nil)
        // The dangling 0x11 is gone: the next message starts on a sample boundary.
        [UInt8(0x01), 0x02].withUnsafeBytes { queue.append(pcmLittleEndian: $0) }
        #expect(Self.next(&queue, size: 1) == [0x0201])
    }

    @Test func capDropsWhatDoesNotFitAndCounts() {
        var queue = PlaybackQueue(capacityLimit: 1000, initialCapacity: 16)
        for value in 0..<1500 { queue.appendSample(Int16(value)) }
        #expect(queue.queuedSamples == 1000)
        #expect(queue.droppedSamples == 500)
        // What was queued first plays on, unbroken.
        #expect(Self.next(&queue, size: 3) == [0, 1, 2])
        // Bulk appends past the cap too: 3 samples fit, the rest is dropped.
        let bytes = TestSignal.littleEndianBytes((0..<2000).map { Int16(-$0) })
        bytes.withUnsafeBytes { queue.append(pcmLittleEndian: $0) }
        #expect(queue.queuedSamples == 1000)
        #expect(queue.droppedSamples == 500 + 1997)
        #expect(Self.next(&queue, size: 997) == (3..<1000).map { Int16($0) })
        #expect(Self.next(&queue, size: 3) == [0, -1, -2])
        #expect(queue.storageCapacity <= 1000)
    }

    @Test func defaultCapIsThirtySeconds() {
        let queue = PlaybackQueue()
        #expect(queue.capacityLimit == 240_000)
    }

    /// A long answer grows the ring; once it has played out, the ring is small again.
    @Test func drainedRingShrinksBack() {
        var queue = PlaybackQueue(capacityLimit: 240_000, initialCapacity: 960, shrinkThreshold: 8000)
        let answer = TestSignal.littleEndianBytes((0..<40_000).map { Int16(truncatingIfNeeded: $0) })
        answer.withUnsafeBytes { queue.append(pcmLittleEndian: $0) }
        #expect(queue.storageCapacity >= 40_000)
        var frames = 0
        while Self.next(&queue) != nil { frames += 1 }
        #expect(frames == 250)
        #expect(queue.storageCapacity == 960)
        // And it still works after shrinking.
        answer.prefix(320).withUnsafeBytes { queue.append(pcmLittleEndian: $0) }
        #expect(Self.next(&queue) == (0..<160).map { Int16($0) })
    }

    @Test func ringMatchesAFIFOUnderRandomTraffic() {
        var random = TestRandom(seed: 42)
        var queue = PlaybackQueue(capacityLimit: 5000, initialCapacity: 8)
        var model: [Int16] = []
        var dropped = 0
        var counter: Int16 = 0
        for _ in 0..<3000 {
            if random.unit() < 0.55 {
                let count = random.int(in: 0...400)
                var samples: [Int16] = []
                for _ in 0..<count { counter &+= 1; samples.append(counter) }
                if random.unit() < 0.5 {
                    for sample in samples { queue.appendSample(sample) }
                } else {
                    TestSignal.littleEndianBytes(samples).withUnsafeBytes { queue.append(pcmLittleEndian: $0) }
                }
                model += samples
                if model.count > 5000 { dropped += model.count - 5000; model.removeLast(model.count - 5000) }
            } else if random.unit() < 0.03 {
                queue.clear()
                model.removeAll()
            } else {
                let frame = Self.next(&queue)
                if model.isEmpty {
                    #expect(frame == nil)
                } else {
                    let taken = Array(model.prefix(160))
                    model.removeFirst(taken.count)
                    #expect(frame == taken + Array(repeating: 0, count: 160 - taken.count))
                }
            }
            #expect(queue.queuedSamples == model.count)
        }
        #expect(queue.droppedSamples == dropped)
    }
}

/// Base64 decoded straight into the ring gives exactly what decoding first and appending the
/// bytes gives: the same samples, the same odd byte carried, the same drops at the limit.
@Suite struct PlaybackQueueBase64Tests {
    static func drain(_ queue: inout PlaybackQueue) -> [Int16] {
        var out: [Int16] = []
        var frame = [Int16](repeating: 0, count: 160)
        while frame.withUnsafeMutableBufferPointer({ queue.nextFrame(into: $0) }) { out += frame }
        return out
    }

    @Test func matchesDecodeThenAppend() throws {
        var random = TestRandom(seed: 42)
        for limit in [100_000, 700] {
            var viaBytes = PlaybackQueue(capacityLimit: limit, initialCapacity: 160)
            var viaBase64 = PlaybackQueue(capacityLimit: limit, initialCapacity: 160)
            for _ in 0..<40 {
                // Odd and even lengths, so a sample is often split between two messages.
                let bytes = (0..<random.int(in: 0...701)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
                let text = Array(Base64.encodeToString(bytes).utf8)
                bytes.withUnsafeBytes { viaBytes.append(pcmLittleEndian: $0) }
                try text.withUnsafeBytes { try viaBase64.append(base64LittleEndianPCM: $0) }
                #expect(viaBase64.queuedSamples == viaBytes.queuedSamples)
                #expect(viaBase64.droppedSamples == viaBytes.droppedSamples)
            }
            #expect(Self.drain(&viaBase64) == Self.drain(&viaBytes), "limit \(limit)")
        }
    }

    @Test func invalidBase64QueuesNothing() throws {
        var queue = PlaybackQueue()
        try Array(Base64.encodeToString([1, 2, 3]).utf8).withUnsafeBytes { try queue.append(base64LittleEndianPCM: $0) }
        #expect(queue.queuedSamples == 1, "one sample and a carried byte")
        for bad in ["AAA*", "AAAAA", "=AAA", "AB=C"] {
            #expect(throws: Base64Error.self) {
                try Array(bad.utf8).withUnsafeBytes { try queue.append(base64LittleEndianPCM: $0) }
            }
            #expect(queue.queuedSamples == 1, "\(bad)")
        }
        // The carried byte is still there: it pairs with the next message's first byte.
        try Array(Base64.encodeToString([4]).utf8).withUnsafeBytes { try queue.append(base64LittleEndianPCM: $0) }
        #expect(Self.drain(&queue).prefix(2) == [Int16(0x0201), Int16(0x0403)])
    }
}
