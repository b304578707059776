/// A growable byte buffer with a reader index: bytes are appended at the end and
/// consumed from the front. Decoders read from it and move the reader index; the
/// storage is compacted only when the consumed prefix is worth reclaiming, so a
/// connection that reads and decodes message by message reuses one allocation.
package struct ByteBuffer: Sendable, Equatable {
    /// All bytes, consumed and unconsumed; `storage[readerIndex...]` is readable.
    package private(set) var storage: [UInt8]
    package private(set) var readerIndex: Int = 0

    package init(capacity: Int = 0) {
        storage = []
        storage.reserveCapacity(capacity)
    }

    package init<S: Sequence>(bytes: S) where S.Element == UInt8 {
        storage = Array(bytes)
    }

    package var readableBytes: Int { storage.count - readerIndex }
    package var isEmpty: Bool { readerIndex == storage.count }

    /// The unconsumed bytes, as a copy-free view valid for the duration of `body`.
    @inlinable
    package func withReadableBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        let start = readerIndex
        return try storage.withUnsafeBytes { raw in
            try body(UnsafeRawBufferPointer(rebasing: raw[start...]))
        }
    }

    /// The readable byte at `offset` from the reader index.
    @inlinable
    package func byte(at offset: Int) -> UInt8 { storage[readerIndex + offset] }

    /// A copy of `count` readable bytes starting `offset` bytes after the reader index.
    package func bytes(at offset: Int, count: Int) -> ArraySlice<UInt8> {
        storage[(readerIndex + offset)..<(readerIndex + offset + count)]
    }

    package mutating func append(_ bytes: UnsafeRawBufferPointer) {
        compactIfWorthwhile()
        storage.append(contentsOf: bytes)
    }

    package mutating func append<S: Sequence>(contentsOf bytes: S) where S.Element == UInt8 {
        compactIfWorthwhile()
        storage.append(contentsOf: bytes)
    }

    package mutating func append(_ byte: UInt8) {
        storage.append(byte)
    }

    package mutating func moveReaderIndex(forwardBy count: Int) {
        precondition(count >= 0 && count <= readableBytes, "reader index past the end")
        readerIndex += count
        if readerIndex == storage.count {
            // Everything consumed: start over at the front, keeping the capacity.
            storage.removeAll(keepingCapacity: true)
            readerIndex = 0
        }
    }

    /// Drops every byte, keeping the capacity.
    package mutating func clear() {
        storage.removeAll(keepingCapacity: true)
        readerIndex = 0
    }

    /// Drops every byte and the allocation behind it (for idle connections).
    package mutating func releaseStorage() {
        storage = []
        readerIndex = 0
    }

    private mutating func compactIfWorthwhile() {
        // Moving the unread tail costs its length; do it only when the consumed prefix is
        // at least as large, so the amortised cost per byte stays constant.
        if readerIndex > 0 && readerIndex >= storage.count - readerIndex {
            storage.removeSubrange(0..<readerIndex)
            readerIndex = 0
        }
    }
}
