/// The start of a frame whose end has not arrived yet, for the readers that decode frames in
/// place from each socket read (`AudioSocketFrameReader`, `WebSocketFrameReader`): when a
/// frame is split across reads, this is what they copy, and all they copy.
package struct IncompleteFrame: Sendable {
    private var bytes: [UInt8] = []
    /// Bytes copied in so far (the micro-benchmarks' "bytes copied").
    package private(set) var copiedBytes = 0

    package init() {}

    package var count: Int { bytes.count }
    package var isEmpty: Bool { bytes.isEmpty }
    package subscript(offset: Int) -> UInt8 { bytes[offset] }

    /// Moves the first `count` bytes of `input` to the end of the frame.
    package mutating func take(_ count: Int, from input: inout UnsafeRawBufferPointer) {
        guard count > 0 else { return }
        bytes.append(contentsOf: UnsafeRawBufferPointer(rebasing: input[..<count]))
        copiedBytes &+= count
        input = UnsafeRawBufferPointer(rebasing: input[count...])
    }

    /// Keeps all of `rest` (a read ended inside a frame).
    package mutating func keep(_ rest: UnsafeRawBufferPointer) {
        bytes.append(contentsOf: rest)
        copiedBytes &+= rest.count
    }

    package func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R {
        bytes.withUnsafeBytes(body)
    }

    /// The frame was handed over: forget it, keeping the storage unless it grew past
    /// `retainedCapacity` bytes (a rare large frame should not pin its memory).
    package mutating func clear(retainedCapacity: Int = .max) {
        bytes.removeAll(keepingCapacity: bytes.capacity <= retainedCapacity)
    }

    /// Drops the bytes and their allocation (the connection ended).
    package mutating func release() {
        bytes = []
    }
}
