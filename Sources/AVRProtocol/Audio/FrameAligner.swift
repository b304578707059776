/// Hands on streamed audio in whole 20 ms frames (320 bytes of 8 kHz s16le), keeping a partial
/// frame until the rest arrives or the stream ends. Playback pads a partial frame with silence
/// when nothing else is queued, so a source that writes slowly in odd pieces would otherwise
/// put gaps into the middle of words.
///
/// Whole frames in a piece are handed on in place; only the partial frame is copied.
package struct FrameAligner: Sendable {
    package static let frameBytes = 320
    private var partial: [UInt8] = []

    package init() {}

    /// Bytes held back until the rest of their frame comes.
    package var heldBytes: Int { partial.count }

    package mutating func append(_ bytes: UnsafeRawBufferPointer, _ emit: (UnsafeRawBufferPointer) -> Void) {
        var input = bytes
        if !partial.isEmpty {
            let take = min(Self.frameBytes - partial.count, input.count)
            partial.append(contentsOf: UnsafeRawBufferPointer(rebasing: input[..<take]))
            input = UnsafeRawBufferPointer(rebasing: input[take...])
            guard partial.count == Self.frameBytes else { return }
            partial.withUnsafeBytes { emit($0) }
            partial.removeAll(keepingCapacity: true)
        }
        let whole = input.count - input.count % Self.frameBytes
        if whole > 0 { emit(UnsafeRawBufferPointer(rebasing: input[..<whole])) }
        if whole < input.count {
            if partial.capacity < Self.frameBytes { partial.reserveCapacity(Self.frameBytes) }
            partial.append(contentsOf: UnsafeRawBufferPointer(rebasing: input[whole...]))
        }
    }

    /// The stream ended: hands on what is held, however short.
    package mutating func flush(_ emit: (UnsafeRawBufferPointer) -> Void) {
        guard !partial.isEmpty else { return }
        partial.withUnsafeBytes { emit($0) }
        partial.removeAll(keepingCapacity: true)
    }

    /// The stream was abandoned (barge-in, failure): forgets what is held.
    package mutating func reset() {
        partial.removeAll(keepingCapacity: true)
    }
}
