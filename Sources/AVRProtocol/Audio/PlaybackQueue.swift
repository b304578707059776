/// The call's outbound speech: 8 kHz samples waiting to be paced out 20 ms at a time.
///
/// A ring buffer that starts small and grows (doubling) up to ``capacityLimit``, so an idle
/// call costs little; once drained, a ring grown past ``shrinkThreshold`` goes back to its
/// initial size, so a call's memory follows what is queued now, not its longest answer.
///
/// An STS may send faster than real time (TTS answers come in bursts), but never more than
/// the limit is held: samples that do not fit are dropped on arrival and counted, so what is
/// already queued plays on unbroken and memory per call is bounded whatever the peer does.
package struct PlaybackQueue: Sendable {
    /// The most samples held (default 30 s at 8 kHz; see `PLAYBACK_QUEUE_LIMIT`).
    package let capacityLimit: Int
    /// Samples dropped because the queue was full, since creation.
    package private(set) var droppedSamples = 0
    /// A drained ring larger than this many samples shrinks back to its initial size.
    package let shrinkThreshold: Int

    private var storage: [Int16]
    private let initialCapacity: Int
    private var head = 0
    package private(set) var queuedSamples = 0
    /// The low byte of a sample whose high byte has not arrived yet.
    private var pendingByte: UInt8?

    package init(capacityLimit: Int = 30 * 8000, initialCapacity: Int = 8000, shrinkThreshold: Int = 8000) {
        precondition(capacityLimit > 0)
        self.capacityLimit = capacityLimit
        self.initialCapacity = max(1, min(initialCapacity, capacityLimit))
        self.shrinkThreshold = max(shrinkThreshold, self.initialCapacity)
        storage = [Int16](repeating: 0, count: self.initialCapacity)
    }

    /// Samples the ring can hold without growing (for memory accounting).
    package var storageCapacity: Int { storage.count }

    package var isEmpty: Bool { queuedSamples == 0 }

    /// Queues s16le PCM of any length; an odd last byte is kept and completed by the next
    /// append (STS services cut their messages anywhere).
    package mutating func append(pcmLittleEndian bytes: UnsafeRawBufferPointer) {
        guard !bytes.isEmpty else { return }
        var index = 0
        if let low = pendingByte {
            appendSample(Int16(bitPattern: UInt16(low) | UInt16(bytes[0]) << 8))
            pendingByte = nil
            index = 1
        }
        let sampleCount = (bytes.count - index) / 2
        reserve(additional: sampleCount)
        if queuedSamples + sampleCount <= storage.count {
            // The common case: room for all of it. Copy in (at most) two runs with one
            // uniqueness check, instead of a checked store per sample.
            let capacity = storage.count
            var tail = head + queuedSamples
            if tail >= capacity { tail -= capacity }
            let source = UnsafeRawBufferPointer(rebasing: bytes[index...])
            storage.withUnsafeMutableBufferPointer { ring in
                let firstRun = min(sampleCount, capacity - tail)
                for offset in 0..<firstRun {
                    ring[tail + offset] = Int16(littleEndian: source.loadUnaligned(fromByteOffset: 2 * offset, as: Int16.self))
                }
                for offset in firstRun..<sampleCount {
                    ring[offset - firstRun] = Int16(littleEndian: source.loadUnaligned(fromByteOffset: 2 * offset, as: Int16.self))
                }
            }
            queuedSamples += sampleCount
            index += 2 * sampleCount
        }
        while index + 1 < bytes.count {
            // Only part of it fits (at the capacity limit): sample by sample, the rest dropped.
            appendSample(Int16(bitPattern: UInt16(bytes[index]) | UInt16(bytes[index + 1]) << 8))
            index += 2
        }
        if index < bytes.count { pendingByte = bytes[index] }
    }

    /// Queues s16le PCM that arrives as base64 (an STS audio message), decoded straight into
    /// the ring in one pass: no intermediate buffer. Invalid base64 queues nothing and throws.
    /// Like ``append(pcmLittleEndian:)``, an odd byte waits for the next append and what does
    /// not fit under the limit is dropped.
    package mutating func append(base64LittleEndianPCM input: UnsafeRawBufferPointer) throws(Base64Error) {
        let length = try Base64.decodedLength(of: input)
        guard length > 0 else { return }
        reserve(additional: (length + 1) / 2)
        let capacity = storage.count
        let start = head
        var queued = queuedSamples
        var pending = pendingByte
        var dropped = 0
        var rest = input
        // Written past the queued samples and committed only when all of it decoded.
        let failure = storage.withUnsafeMutableBufferPointer { ring -> Base64Error? in
            do throws(Base64Error) {
                #if _endian(little)
                if pending == nil, let base = ring.baseAddress {
                    // Whole groups go straight into the ring's free run as bytes (s16le is the
                    // ring's own layout here); only a group straddling its end, and what follows
                    // after the wrap, take the sample-by-sample path below.
                    var tail = start + queued
                    if tail >= capacity { tail -= capacity }
                    let run = min(capacity - queued, capacity - tail)
                    let groups = min(rest.count / 4, run * 2 / 3)
                    if groups > 0 {
                        let region = UnsafeMutableRawBufferPointer(start: base + tail, count: run * 2)
                        let written = try Base64.decode(UnsafeRawBufferPointer(rebasing: rest[..<(groups * 4)]), into: region)
                        queued += written / 2
                        if written % 2 == 1 { pending = region[written - 1] }
                        rest = UnsafeRawBufferPointer(rebasing: rest[(groups * 4)...])
                    }
                }
                #endif
                @inline(__always) func push(_ byte: UInt8) {
                    guard let low = pending else {
                        pending = byte
                        return
                    }
                    pending = nil
                    guard queued < capacity else {
                        dropped += 1
                        return
                    }
                    var tail = start + queued
                    if tail >= capacity { tail -= capacity }
                    ring[tail] = Int16(bitPattern: UInt16(low) | UInt16(byte) << 8)
                    queued += 1
                }
                try Base64.forEachGroup(rest) { group, byteCount in
                    push(UInt8(truncatingIfNeeded: group >> 16))
                    if byteCount > 1 { push(UInt8(truncatingIfNeeded: group >> 8)) }
                    if byteCount > 2 { push(UInt8(truncatingIfNeeded: group)) }
                }
                return nil
            } catch {
                return error
            }
        }
        if let failure { throw failure }
        queuedSamples = queued
        pendingByte = pending
        droppedSamples += dropped
    }

    /// Queues one sample (for decoders that produce samples directly, e.g. from base64).
    @inline(__always)
    package mutating func appendSample(_ sample: Int16) {
        if queuedSamples == storage.count {
            guard storage.count < capacityLimit else {
                // Full at the limit: the newcomer is dropped.
                droppedSamples += 1
                return
            }
            grow(to: min(storage.count * 2, capacityLimit))
        }
        var tail = head + queuedSamples
        if tail >= storage.count { tail -= storage.count }
        storage[tail] = sample
        queuedSamples += 1
    }

    /// Moves the next `frame.count` samples (160 for 20 ms) into `frame`, padding a final
    /// partial frame with silence. Returns `false`, leaving `frame` untouched, when nothing is
    /// queued: the caller then sends silence or ambient noise.
    package mutating func nextFrame(into frame: UnsafeMutableBufferPointer<Int16>) -> Bool {
        let count = take(into: frame)
        guard count > 0 else { return false }
        for index in count..<frame.count { frame[index] = 0 }
        return true
    }

    /// Moves up to `frame.count` samples into the start of `frame` and returns how many: no
    /// padding (``PlayoutController`` sends a short tail as a short frame).
    package mutating func take(into frame: UnsafeMutableBufferPointer<Int16>) -> Int {
        let count = min(frame.count, queuedSamples)
        guard count > 0 else { return 0 }
        storage.withUnsafeBufferPointer { ring in
            let firstRun = min(count, ring.count - head)
            for index in 0..<firstRun { frame[index] = ring[head + index] }
            for index in firstRun..<count { frame[index] = ring[index - firstRun] }
        }
        advance(by: count)
        return count
    }

    /// The loudest of the first `count` queued samples, as a magnitude (0...32768): how
    /// ``PlayoutController`` tells a silent frame it may skip from speech it must play.
    package func peak(ofFirst count: Int) -> Int {
        let count = min(count, queuedSamples)
        guard count > 0 else { return 0 }
        return storage.withUnsafeBufferPointer { ring in
            var peak: Int32 = 0
            var index = head
            for _ in 0..<count {
                let value = Int32(ring[index])
                peak = max(peak, value < 0 ? -value : value)
                index += 1
                if index == ring.count { index = 0 }
            }
            return Int(peak)
        }
    }

    /// Drops the first `count` queued samples (a silent frame skipped to take back delay).
    package mutating func discard(_ count: Int) {
        let count = min(count, queuedSamples)
        guard count > 0 else { return }
        advance(by: count)
    }

    private mutating func advance(by count: Int) {
        head = (head + count) % storage.count
        queuedSamples -= count
        if queuedSamples == 0 {
            head = 0
            if storage.count > shrinkThreshold { storage = [Int16](repeating: 0, count: initialCapacity) }
        }
    }

    /// Drops everything queued, at once (the caller barged in). Keeps the storage.
    package mutating func clear() {
        head = 0
        queuedSamples = 0
        pendingByte = nil
    }

    private mutating func reserve(additional: Int) {
        let needed = queuedSamples + additional
        guard needed > storage.count, storage.count < capacityLimit else { return }
        var capacity = storage.count
        while capacity < needed && capacity < capacityLimit { capacity *= 2 }
        grow(to: min(capacity, capacityLimit))
    }

    private mutating func grow(to capacity: Int) {
        var larger = [Int16](repeating: 0, count: capacity)
        for index in 0..<queuedSamples {
            larger[index] = storage[(head + index) % storage.count]
        }
        storage = larger
        head = 0
    }
}
