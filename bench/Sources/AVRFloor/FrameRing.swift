/// Caller frames the floor relay holds until the STS answers for them: each frame is
/// *pending* until one STS frame arrives, then *ready* until the 20 ms tick plays it. Copies
/// are plain `memcpy` into fixed slots; nothing is allocated per frame.
struct FrameRing {
    static let slots = 64
    static let slotSize = 640
    private var storage = [UInt8](repeating: 0, count: slots * slotSize)
    private var lengths = [Int](repeating: 0, count: slots)
    private var head = 0      // next to play
    private var readyEnd = 0  // first not yet answered
    private var end = 0       // next free
    private(set) var dropped = 0

    mutating func push(_ payload: UnsafeRawBufferPointer) {
        if end - head == Self.slots {
            head += 1
            readyEnd = max(readyEnd, head)
            dropped += 1
        }
        let slot = end % Self.slots
        let count = min(payload.count, Self.slotSize)
        storage.withUnsafeMutableBytes { bytes in
            bytes.baseAddress!.advanced(by: slot * Self.slotSize).copyMemory(from: payload.baseAddress!, byteCount: count)
        }
        lengths[slot] = count
        end += 1
    }

    /// One STS frame came back: the oldest pending frame becomes ready.
    mutating func answerOne() {
        if readyEnd < end { readyEnd += 1 }
    }

    /// Calls `body` with the next ready frame, if any, and drops it.
    mutating func playOne(_ body: (UnsafeRawBufferPointer) -> Void) -> Bool {
        guard head < readyEnd else { return false }
        let slot = head % Self.slots
        let count = lengths[slot]
        storage.withUnsafeBytes { bytes in
            body(UnsafeRawBufferPointer(rebasing: bytes[(slot * Self.slotSize)..<(slot * Self.slotSize + count)]))
        }
        head += 1
        return true
    }
}
