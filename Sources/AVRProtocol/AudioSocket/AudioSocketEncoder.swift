/// Writes AudioSocket messages. Everything appends to or writes into storage the caller owns,
/// so a connection reuses one outbound buffer for the whole call.
package enum AudioSocketEncoder {
    /// Header size: kind + 16-bit big-endian length.
    package static let headerLength = 3
    /// The `0x00` message, ready to send.
    package static let hangupMessage: [UInt8] = [0x00, 0x00, 0x00]

    /// Appends one message. A payload over 65 535 bytes is our bug, not the peer's.
    package static func appendFrame(
        kind: AudioSocketKind, payload: UnsafeRawBufferPointer, to output: inout [UInt8]
    ) {
        precondition(payload.count <= 0xFFFF, "AudioSocket payload over 65535 bytes")
        output.append(kind.rawValue)
        output.append(UInt8(truncatingIfNeeded: payload.count >> 8))
        output.append(UInt8(truncatingIfNeeded: payload.count))
        output.append(contentsOf: payload)
    }

    /// Appends a `0x00` hangup message.
    package static func appendHangup(to output: inout [UInt8]) {
        output.append(contentsOf: hangupMessage)
    }

    /// Writes the 3-byte header at the start of `destination`; returns 3.
    @discardableResult
    package static func writeHeader(
        kind: AudioSocketKind, payloadLength: Int, into destination: UnsafeMutableRawBufferPointer
    ) -> Int {
        precondition(payloadLength >= 0 && payloadLength <= 0xFFFF, "AudioSocket payload over 65535 bytes")
        precondition(destination.count >= headerLength, "destination shorter than a header")
        destination[0] = kind.rawValue
        destination[1] = UInt8(truncatingIfNeeded: payloadLength >> 8)
        destination[2] = UInt8(truncatingIfNeeded: payloadLength)
        return headerLength
    }

    /// The size of one outbound `0x10` message for `sampleCount` samples.
    @inlinable
    package static func audioMessageLength(sampleCount: Int) -> Int {
        headerLength + 2 * sampleCount
    }

    /// Encodes 8 kHz samples (normally one 20 ms frame of 160) as a complete `0x10` message of
    /// signed linear 16-bit little-endian — the only audio the server sends, to every caller:
    /// Asterisk's `res_audiosocket.c` reads every `0x10` from the server as 8 kHz slin whatever
    /// the channel's codec (G.711 bytes there would be heard as noise) — into `destination`,
    /// which must hold ``audioMessageLength(sampleCount:)`` bytes (323 for 160 samples).
    /// Returns the message length. No allocation.
    @discardableResult
    package static func encodeAudioMessage(
        samples: UnsafeBufferPointer<Int16>, into destination: UnsafeMutableRawBufferPointer
    ) -> Int {
        let length = audioMessageLength(sampleCount: samples.count)
        precondition(destination.count >= length, "destination too small for the audio message")
        writeHeader(kind: .audio8kHz, payloadLength: length - headerLength, into: destination)
        let payload = UnsafeMutableRawBufferPointer(rebasing: destination[headerLength..<length])
        AudioCodec.slin.encode(samples, into: payload)
        return length
    }
}
