/// Bytes waiting for the kernel: a manually managed heap block whose address stays fixed
/// while libuv writes from it (a Swift array could move on mutation). Reused for the life
/// of the stream, so steady-state writes allocate nothing.
struct OutboundBuffer {
    private(set) var base: UnsafeMutableRawPointer?
    private(set) var count = 0
    private var capacity = 0

    var isEmpty: Bool { count == 0 }

    mutating func append(_ bytes: UnsafeRawBufferPointer) {
        guard bytes.count > 0 else { return }
        let needed = count + bytes.count
        if needed > capacity {
            let newCapacity = max(needed, capacity * 2, 512)
            let grown = UnsafeMutableRawPointer.allocate(byteCount: newCapacity, alignment: 16)
            if let base {
                grown.copyMemory(from: base, byteCount: count)
                base.deallocate()
            }
            base = grown
            capacity = newCapacity
        }
        (base! + count).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
        count = needed
    }

    /// Forgets the contents; keeps the block unless it grew past `keep` bytes.
    mutating func reset(keepingAtMost keep: Int = 64 * 1024) {
        count = 0
        if capacity > keep { free() }
    }

    mutating func free() {
        base?.deallocate()
        base = nil
        count = 0
        capacity = 0
    }
}
