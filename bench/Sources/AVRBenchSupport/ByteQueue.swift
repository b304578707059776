/// A growable byte buffer with a read index, compacted only when the consumed front is large:
/// the harness's per-connection receive buffer.
public struct ByteQueue {
    public private(set) var bytes: [UInt8] = []
    public private(set) var start = 0

    public init() {}

    public var count: Int { bytes.count - start }
    public var isEmpty: Bool { count == 0 }

    public mutating func append(_ chunk: UnsafeRawBufferPointer) {
        if start > 0 && start >= bytes.count / 2 {
            bytes.removeFirst(start)
            start = 0
        }
        bytes.append(contentsOf: chunk)
    }

    public mutating func consume(_ count: Int) {
        precondition(count <= self.count, "consuming more than is queued")
        start += count
        if start == bytes.count {
            bytes.removeAll(keepingCapacity: true)
            start = 0
        }
    }

    public subscript(offset: Int) -> UInt8 { bytes[start + offset] }

    /// The readable bytes, mutable in place (unmasking).
    public mutating func withReadable<R>(_ body: (UnsafeMutableRawBufferPointer) -> R) -> R {
        let from = start
        return bytes.withUnsafeMutableBytes { body(UnsafeMutableRawBufferPointer(rebasing: $0[from...])) }
    }
}
