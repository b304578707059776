/// The 4-byte key a client XORs over every payload byte it sends (RFC 6455 §5.3).
package struct WebSocketMaskingKey: Sendable, Equatable, Hashable {
    package var bytes: (UInt8, UInt8, UInt8, UInt8)

    @inlinable
    package init(_ b0: UInt8, _ b1: UInt8, _ b2: UInt8, _ b3: UInt8) {
        bytes = (b0, b1, b2, b3)
    }

    @inlinable
    package init(_ bytes: (UInt8, UInt8, UInt8, UInt8)) {
        self.bytes = bytes
    }

    /// The byte that masks payload offset `offset`.
    @inlinable
    package subscript(offset: Int) -> UInt8 {
        switch offset & 3 {
        case 0: return bytes.0
        case 1: return bytes.1
        case 2: return bytes.2
        default: return bytes.3
        }
    }

    /// The key as four bytes in memory order starting at payload offset `phase`, packed into a
    /// `UInt32` whose low byte masks the first of four consecutive payload bytes. XOR it over a
    /// little-endian load/store of four payload bytes beginning at an offset ≡ `phase` (mod 4).
    @inlinable
    package func word(phase: Int) -> UInt32 {
        UInt32(self[phase]) | UInt32(self[phase + 1]) << 8 | UInt32(self[phase + 2]) << 16
            | UInt32(self[phase + 3]) << 24
    }

    package static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.bytes == rhs.bytes
    }

    package func hash(into hasher: inout Hasher) {
        hasher.combine(word(phase: 0))
    }
}

/// Hands out masking keys the server cannot predict (RFC 6455 §10.3 asks for that, against
/// cache-poisoning proxies) without a system call per frame: it keeps a 4 KiB block of random
/// bytes and refills it from the system CSPRNG when the block is used up, i.e. once per
/// 1024 frames.
package struct WebSocketMaskingKeySource: Sendable {
    /// Fills the whole buffer with fresh random bytes. Injectable so tests get known keys.
    package typealias Refill = @Sendable (UnsafeMutableRawBufferPointer) -> Void

    package static let blockSize = 4096

    private var block: [UInt8]
    private var nextOffset: Int
    private let refill: Refill

    /// - Parameter refill: defaults to `SystemRandomNumberGenerator` (the OS CSPRNG).
    package init(refill: @escaping Refill = WebSocketMaskingKeySource.systemRefill) {
        self.block = [UInt8](repeating: 0, count: Self.blockSize)
        self.nextOffset = Self.blockSize  // empty: the first key triggers a refill
        self.refill = refill
    }

    package mutating func next() -> WebSocketMaskingKey {
        if nextOffset + 4 > block.count {
            let refill = self.refill
            block.withUnsafeMutableBytes { refill($0) }
            nextOffset = 0
        }
        defer { nextOffset += 4 }
        return WebSocketMaskingKey(
            block[nextOffset], block[nextOffset + 1], block[nextOffset + 2], block[nextOffset + 3])
    }

    package static let systemRefill: Refill = { buffer in
        var generator = SystemRandomNumberGenerator()
        var offset = 0
        while offset < buffer.count {
            var word = generator.next() as UInt64
            for _ in 0..<8 where offset < buffer.count {
                buffer[offset] = UInt8(truncatingIfNeeded: word)
                word >>= 8
                offset += 1
            }
        }
    }
}
