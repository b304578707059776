/// The marker each simulated caller frame carries in its first bytes, so the audio that comes
/// back can be traced to the call and frame it was sent as.
///
/// Layout: 20 bytes — magic `AVRB`, call id (u32 LE), sequence (u32 LE), send time (u64 LE,
/// monotonic ns) — each byte written as two bytes `0x10 | nibble`. The nibble form survives
/// every codec path of the server: slin bytes go through untouched, and for G.711 the values
/// `0x10…0x1F` round-trip exactly through μ-law and A-law (μ-law `0x7F`, the one code that
/// does not, never occurs).
///
/// `base` replaces `0x10` as the high nibble of every stamp byte. G.711 callers use codes that
/// decode to near-silence (μ-law `0xF0…0xFF`, A-law `0xD0…0xDF`): with `0x10` the stamp reads
/// as a loud data burst in a quarter of each 160-byte frame, which drives a content-based
/// μ-law/A-law decision (about one μ-law caller in ten then looks like A-law); a quiet gap
/// does not. Both round-trip exactly through decoding to slin and re-encoding.
public struct FrameStamp: Equatable, Sendable {
    public static let magic: UInt32 = 0x4252_5641  // "AVRB" little-endian
    public static let rawLength = 20
    /// Bytes the stamp occupies at the start of a payload.
    public static let encodedLength = rawLength * 2

    public var callID: UInt32
    public var sequence: UInt32
    public var sentNanoseconds: UInt64

    public init(callID: UInt32, sequence: UInt32, sentNanoseconds: UInt64) {
        self.callID = callID
        self.sequence = sequence
        self.sentNanoseconds = sentNanoseconds
    }

    /// Writes the stamp into the first `encodedLength` bytes of `payload`.
    public func write(into payload: UnsafeMutableRawBufferPointer, base: UInt8 = 0x10) {
        precondition(payload.count >= Self.encodedLength, "payload too short for a stamp")
        var offset = 0
        func put(_ value: UInt64, bytes: Int) {
            for index in 0..<bytes {
                let byte = UInt8(truncatingIfNeeded: value >> (8 * UInt64(index)))
                payload[offset] = base | (byte & 0x0F)
                payload[offset + 1] = base | (byte >> 4)
                offset += 2
            }
        }
        put(UInt64(Self.magic), bytes: 4)
        put(UInt64(callID), bytes: 4)
        put(UInt64(sequence), bytes: 4)
        put(sentNanoseconds, bytes: 8)
    }

    /// The stamp at the start of `payload`, nil when there is none (silence, STS speech).
    public static func read(from payload: UnsafeRawBufferPointer, base: UInt8 = 0x10) -> FrameStamp? {
        guard payload.count >= encodedLength else { return nil }
        var offset = 0
        func take(bytes: Int) -> UInt64? {
            var value: UInt64 = 0
            for index in 0..<bytes {
                let low = payload[offset], high = payload[offset + 1]
                guard low & 0xF0 == base, high & 0xF0 == base else { return nil }
                value |= UInt64((low & 0x0F) | (high & 0x0F) << 4) << (8 * UInt64(index))
                offset += 2
            }
            return value
        }
        guard take(bytes: 4) == UInt64(magic),
              let call = take(bytes: 4), let sequence = take(bytes: 4), let sent = take(bytes: 8)
        else { return nil }
        return FrameStamp(callID: UInt32(call), sequence: UInt32(sequence), sentNanoseconds: sent)
    }
}
