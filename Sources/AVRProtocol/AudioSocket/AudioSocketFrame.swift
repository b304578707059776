/// One decoded AudioSocket message.
///
/// Control messages are small and decoded into values. Audio is not copied: the frame only
/// describes it (``AudioSocketAudio``), and the bytes stay in the connection's read buffer,
/// where ``AudioSocketAudio/withPayload(in:_:)`` reads them in place until the next call to
/// ``AudioSocketDecoder/decode(_:)``. That costs no allocation and no copy per 20 ms frame,
/// where an `ArraySlice` of the buffer's storage would retain it and make the buffer's next
/// reset reallocate.
package enum AudioSocketFrame: Equatable, Sendable {
    /// `0x00`: the peer ends the call.
    case hangup
    /// `0x01`: the call UUID.
    case uuid(CallUUID)
    /// `0x03`: a DTMF key.
    case dtmf(DTMFDigit)
    /// `0x03` whose byte is not a DTMF key. The framing is intact (one byte, as announced),
    /// so this is one bad key press, not a broken stream: the call goes on.
    case invalidDTMF(UInt8)
    /// `0x10`…`0x18`: audio, left in the read buffer.
    case audio(AudioSocketAudio)
    /// `0xff`: an error on the Asterisk side, with its (possibly empty) application code.
    case error(code: [UInt8])
}

/// An audio message whose payload is the first `payloadLength` readable bytes of the buffer
/// it was decoded from, until the next `decode` call consumes them.
package struct AudioSocketAudio: Equatable, Sendable {
    /// `.audio8kHz` … `.audio192kHz`.
    package let kind: AudioSocketKind
    /// The payload length in bytes (never 0).
    package let payloadLength: Int

    package init(kind: AudioSocketKind, payloadLength: Int) {
        precondition(kind.isAudio, "not an audio kind")
        self.kind = kind
        self.payloadLength = payloadLength
    }

    /// The sample rate in Hz.
    @inlinable
    package var sampleRate: Int { kind.sampleRate! }

    /// Calls `body` with the payload, read in place from `buffer`, which must be the buffer
    /// this frame was decoded from, before it is passed to `decode` again.
    @inlinable
    package func withPayload<R>(
        in buffer: ByteBuffer, _ body: (UnsafeRawBufferPointer) throws -> R
    ) rethrows -> R {
        precondition(buffer.readableBytes >= payloadLength, "audio payload no longer in the buffer")
        return try buffer.withReadableBytes { readable in
            try body(UnsafeRawBufferPointer(rebasing: readable.prefix(payloadLength)))
        }
    }
}
