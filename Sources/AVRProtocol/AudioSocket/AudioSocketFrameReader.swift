/// Decodes AudioSocket messages straight from each read (the event loop's read buffer) and
/// copies only an incomplete tail: a message that arrives whole is handed over in place,
/// its payload a view into the read; the bytes of a message split across reads wait in
/// `tail`, which never holds more than one incomplete message.
///
/// The same checks as ``AudioSocketDecoder`` (which decodes from a ``ByteBuffer``), as early
/// as the bytes allow: an unknown kind fails on its first byte, a bad length on the third.
/// After an error the connection must be closed.
package struct AudioSocketFrameReader: Sendable {
    package let maximumPayloadLength: Int
    /// The beginning of a message whose end has not arrived yet.
    private var tail = IncompleteFrame()
    /// Bytes copied into the tail so far (the micro-benchmarks' "bytes copied").
    package var copiedBytes: Int { tail.copiedBytes }

    package init(maximumPayloadLength: Int = AudioSocketDecoder.defaultMaximumPayloadLength) {
        precondition(maximumPayloadLength >= 16 && maximumPayloadLength <= 0xFFFF)
        self.maximumPayloadLength = maximumPayloadLength
    }

    /// Bytes of an incomplete message waiting for the next read.
    package var bufferedBytes: Int { tail.count }

    /// Calls `body` with every message completed by `bytes`, in order: the frame, and for
    /// audio its payload (a view valid only during the call; empty for other kinds).
    /// `body` returns false to stop: the rest of `bytes` is dropped. Whatever is left of an
    /// incomplete message is copied into the tail.
    package mutating func read(_ bytes: UnsafeRawBufferPointer,
                              _ body: (AudioSocketFrame, UnsafeRawBufferPointer) -> Bool) throws(AudioSocketError) {
        var input = bytes
        if !tail.isEmpty {
            guard try completeTail(&input, body) else { return }
        }
        while !input.isEmpty {
            guard let (kind, length) = try AudioSocketDecoder.header(
                available: input.count, maximumPayloadLength: maximumPayloadLength, byte: { input[$0] }),
                  input.count >= 3 + length else {
                tail.keep(input)
                return
            }
            let message = UnsafeRawBufferPointer(rebasing: input[..<(3 + length)])
            input = UnsafeRawBufferPointer(rebasing: input[(3 + length)...])
            guard Self.deliver(message, kind: kind, length: length, body) else { return }
        }
    }

    /// Drops the tail and its allocation (the connection ended).
    package mutating func releaseStorage() {
        tail.release()
    }

    /// Moves bytes from `input` into the tail until its message is complete, then hands
    /// it over. False: no more messages now (the read ran out, or `body` said stop).
    private mutating func completeTail(_ input: inout UnsafeRawBufferPointer,
                                       _ body: (AudioSocketFrame, UnsafeRawBufferPointer) -> Bool) throws(AudioSocketError) -> Bool {
        if tail.count < 3 {
            tail.take(min(3 - tail.count, input.count), from: &input)
        }
        guard let (kind, length) = try AudioSocketDecoder.header(
            available: tail.count, maximumPayloadLength: maximumPayloadLength, byte: { tail[$0] }) else { return false }
        tail.take(min(3 + length - tail.count, input.count), from: &input)
        guard tail.count == 3 + length else { return false }
        let goOn = tail.withUnsafeBytes { Self.deliver($0, kind: kind, length: length, body) }
        tail.clear()
        return goOn
    }

    /// Hands over one complete message (`message` starts at its kind byte).
    @inline(__always)
    private static func deliver(_ message: UnsafeRawBufferPointer, kind: AudioSocketKind, length: Int,
                                _ body: (AudioSocketFrame, UnsafeRawBufferPointer) -> Bool) -> Bool {
        if kind.isAudio {
            return body(.audio(AudioSocketAudio(kind: kind, payloadLength: length)),
                        UnsafeRawBufferPointer(rebasing: message[3...]))
        }
        let frame = AudioSocketDecoder.controlFrame(kind: kind, length: length, byte: { message[$0] },
                                                    bytes: { Array(message[$0..<($0 + $1)]) })
        return body(frame, UnsafeRawBufferPointer(start: nil, count: 0))
    }
}
