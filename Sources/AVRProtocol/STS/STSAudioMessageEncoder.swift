/// Writes the per-20-ms message to the STS service — one masked WebSocket text frame holding
/// exactly `{"type":"audio","audio":"<base64 of the PCM>"}` — in a single pass: the length is
/// known up front, so the header goes first, then the JSON prefix, the base64 and the suffix
/// are masked as they are written. No intermediate buffers.
package enum STSAudioMessageEncoder {
    static let prefix: [UInt8] = Array(#"{"type":"audio","audio":""#.utf8)
    static let suffix: [UInt8] = Array(#""}"#.utf8)

    /// The JSON text length for `pcmByteCount` bytes of audio.
    package static func payloadLength(pcmByteCount: Int) -> Int {
        prefix.count + Base64.encodedLength(of: pcmByteCount) + suffix.count
    }

    /// The whole frame's length, header included (e.g. 466 bytes for 320 bytes of PCM).
    package static func frameLength(pcmByteCount: Int) -> Int {
        let payload = payloadLength(pcmByteCount: pcmByteCount)
        return WebSocketFrame.headerLength(payloadLength: payload, masked: true) + payload
    }

    /// Appends the frame for `pcm` (signed 16-bit little-endian samples, as the caller has
    /// them) to `output`.
    package static func appendFrame(pcm: UnsafeRawBufferPointer, maskingKey: WebSocketMaskingKey, to output: inout [UInt8]) {
        let payloadLength = payloadLength(pcmByteCount: pcm.count)
        let base64Length = Base64.encodedLength(of: pcm.count)
        let headerLength = WebSocketFrame.headerLength(payloadLength: payloadLength, masked: true)
        WebSocketFrameEncoder.appendUninitialized(count: headerLength + payloadLength, to: &output) { frame in
            _ = WebSocketFrameEncoder.writeHeader(
                fin: true, opcode: .text, payloadLength: payloadLength, maskingKey: maskingKey, into: frame)
            var offset = headerLength
            prefix.withUnsafeBytes { bytes in
                WebSocketFrameEncoder.copyMasked(
                    bytes, to: UnsafeMutableRawBufferPointer(rebasing: frame[offset...]), key: maskingKey, phase: 0)
            }
            offset += prefix.count
            // Every base64 quad starts at a payload offset ≡ prefix.count (mod 4), so one
            // rotated key word masks them all.
            _ = Base64.encode(
                pcm, into: UnsafeMutableRawBufferPointer(rebasing: frame[offset..<(offset + base64Length)]),
                xorMask: maskingKey.word(phase: prefix.count))
            offset += base64Length
            suffix.withUnsafeBytes { bytes in
                WebSocketFrameEncoder.copyMasked(
                    bytes, to: UnsafeMutableRawBufferPointer(rebasing: frame[offset...]), key: maskingKey,
                    phase: prefix.count + base64Length)
            }
        }
    }
}
