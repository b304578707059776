/// Caller audio held back for a while (until a speech service connection opens, until the
/// codec is known, until a route is claimed), in order, so the first words are not lost.
/// Bounded: beyond `capacity` bytes the oldest frames are dropped (and counted).
package struct HeldAudio: Sendable {
    package let capacity: Int
    package private(set) var bytes: [UInt8] = []
    package private(set) var frameLengths: [Int] = []
    package private(set) var droppedBytes = 0

    package init(capacity: Int) { self.capacity = capacity }

    package var isEmpty: Bool { frameLengths.isEmpty }

    package mutating func append(_ pcm: UnsafeRawBufferPointer) {
        bytes.append(contentsOf: pcm)
        frameLengths.append(pcm.count)
        var excess = bytes.count - capacity
        var dropFrames = 0
        while excess > 0, dropFrames < frameLengths.count {
            excess -= frameLengths[dropFrames]
            dropFrames += 1
        }
        if dropFrames > 0 {
            let dropBytes = frameLengths[..<dropFrames].reduce(0, +)
            droppedBytes += dropBytes
            bytes.removeFirst(dropBytes)
            frameLengths.removeFirst(dropFrames)
        }
    }

    /// Hands back each held frame in order and forgets them.
    package mutating func drain(_ body: (UnsafeRawBufferPointer) -> Void) {
        bytes.withUnsafeBytes { all in
            var offset = 0
            for length in frameLengths {
                body(UnsafeRawBufferPointer(rebasing: all[offset..<(offset + length)]))
                offset += length
            }
        }
        bytes = []
        frameLengths = []
    }
}
