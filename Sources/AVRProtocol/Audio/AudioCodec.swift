/// The encoding of 8 kHz audio inside AudioSocket `0x10` messages. `AudioSocket()` always
/// sends signed linear; `Dial(AudioSocket/...)` sends the caller's native codec, which may be
/// G.711 (see ``CodecDetector``). Only the inbound direction has a codec: Asterisk's
/// `res_audiosocket.c` reads every `0x10` message from the server as 8 kHz slin, whatever the
/// channel's codec, so playback is always slin.
package enum AudioCodec: Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// Signed linear 16-bit little-endian: 320 bytes per 20 ms.
    case slin
    /// G.711 μ-law: 160 bytes per 20 ms.
    case ulaw
    /// G.711 A-law: 160 bytes per 20 ms.
    case alaw

    /// The name used in the log line `Audio codec detected: ULAW|ALAW|SLIN`.
    package var description: String {
        switch self {
        case .slin: "SLIN"
        case .ulaw: "ULAW"
        case .alaw: "ALAW"
        }
    }

    /// Bytes per 8 kHz sample on the wire.
    @inlinable
    package var bytesPerSample: Int { self == .slin ? 2 : 1 }

    /// Decodes a payload into 16-bit samples; returns how many were written
    /// (`min(samples in payload, output.count)`; an odd trailing slin byte is not a sample).
    @discardableResult
    package func decode(_ payload: UnsafeRawBufferPointer, into output: UnsafeMutableBufferPointer<Int16>) -> Int {
        switch self {
        case .slin:
            let count = min(payload.count / 2, output.count)
            for index in 0..<count {
                output[index] = Int16(bitPattern: UInt16(payload[2 * index]) | UInt16(payload[2 * index + 1]) << 8)
            }
            return count
        case .ulaw:
            return G711.decodeMuLaw(payload, into: output)
        case .alaw:
            return G711.decodeALaw(payload, into: output)
        }
    }

    /// Appends the payload as 8 kHz s16le bytes (what the STS services take). Slin is copied
    /// as is (without an odd trailing byte).
    package func appendLittleEndian(decoding payload: UnsafeRawBufferPointer, to output: inout [UInt8]) {
        switch self {
        case .slin:
            output.append(contentsOf: UnsafeRawBufferPointer(rebasing: payload.prefix(payload.count & ~1)))
        case .ulaw:
            G711.appendMuLawAsLittleEndian(payload, to: &output)
        case .alaw:
            G711.appendALawAsLittleEndian(payload, to: &output)
        }
    }

    /// Encodes samples into `output`, which must hold `samples.count * bytesPerSample` bytes.
    package func encode(_ samples: UnsafeBufferPointer<Int16>, into output: UnsafeMutableRawBufferPointer) {
        precondition(output.count >= samples.count * bytesPerSample, "output too small")
        switch self {
        case .slin:
            for (index, sample) in samples.enumerated() {
                let bits = UInt16(bitPattern: sample)
                output[2 * index] = UInt8(truncatingIfNeeded: bits)
                output[2 * index + 1] = UInt8(truncatingIfNeeded: bits >> 8)
            }
        case .ulaw:
            for (index, sample) in samples.enumerated() {
                output[index] = G711.muLaw(sample)
            }
        case .alaw:
            for (index, sample) in samples.enumerated() {
                output[index] = G711.aLaw(sample)
            }
        }
    }
}
