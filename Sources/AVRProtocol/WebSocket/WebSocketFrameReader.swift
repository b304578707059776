/// Decodes the frames a WebSocket server sends straight from each read (the event loop's
/// read buffer) and copies only an incomplete frame: a frame that arrives whole is handed
/// over in place, its payload a view into the read; the bytes of a frame split across reads
/// wait in `tail`, which never holds more than one incomplete frame.
///
/// The same checks as ``WebSocketFrameDecoder`` (which decodes from a ``ByteBuffer``), as
/// early as the bytes allow. After an error the connection must be failed.
package struct WebSocketFrameReader: Sendable {
    package let maxFrameSize: Int
    /// The beginning of a frame whose end has not arrived yet.
    private var tail = IncompleteFrame()
    /// Bytes copied into the tail so far (the micro-benchmarks' "bytes copied").
    package var copiedBytes: Int { tail.copiedBytes }

    package init(maxFrameSize: Int = WebSocketFrameDecoder.defaultMaxFrameSize) {
        precondition(maxFrameSize >= 125, "every control frame must fit")
        self.maxFrameSize = maxFrameSize
    }

    /// Bytes of an incomplete frame waiting for the next read.
    package var bufferedBytes: Int { tail.count }

    /// Calls `body` with every frame completed by `bytes`, in order, and its payload (a view
    /// valid only during the call). `body` returns false to stop: the rest of `bytes` is
    /// dropped. Whatever is left of an incomplete frame is copied into the tail.
    package mutating func read(_ bytes: UnsafeRawBufferPointer,
                              _ body: (WebSocketFrame, UnsafeRawBufferPointer) throws(WebSocketError) -> Bool) throws(WebSocketError) {
        var input = bytes
        if !tail.isEmpty {
            guard try completeTail(&input, body) else { return }
        }
        while !input.isEmpty {
            let view = input
            guard let (frame, headerLength) = try WebSocketFrameDecoder.header(
                available: view.count, maxFrameSize: maxFrameSize, byte: { view[$0] }),
                  view.count - headerLength >= frame.payloadLength else {
                tail.keep(input)
                return
            }
            let end = headerLength + frame.payloadLength
            let payload = UnsafeRawBufferPointer(rebasing: view[headerLength..<end])
            input = UnsafeRawBufferPointer(rebasing: view[end...])
            guard try body(frame, payload) else { return }
        }
    }

    /// Drops the tail and its allocation (the connection ended).
    package mutating func releaseStorage() {
        tail.release()
    }

    /// Moves bytes from `input` into the tail until its frame is complete, then hands it
    /// over. False: no more frames now (the read ran out, or `body` said stop).
    private mutating func completeTail(_ input: inout UnsafeRawBufferPointer,
                                       _ body: (WebSocketFrame, UnsafeRawBufferPointer) throws(WebSocketError) -> Bool) throws(WebSocketError) -> Bool {
        var parsed: (WebSocketFrame, headerLength: Int)?
        // The header is at most 10 bytes: take them one at a time until it parses.
        while true {
            let maxFrameSize = maxFrameSize
            let result = tail.withUnsafeBytes { held in
                Result { () throws(WebSocketError) in
                    try WebSocketFrameDecoder.header(available: held.count, maxFrameSize: maxFrameSize, byte: { held[$0] })
                }
            }
            parsed = try result.get()
            if parsed != nil { break }
            guard !input.isEmpty else { return false }
            tail.take(1, from: &input)
        }
        guard let (frame, headerLength) = parsed else { return false }
        let end = headerLength + frame.payloadLength
        tail.take(min(end - tail.count, input.count), from: &input)
        guard tail.count == end else { return false }
        let outcome = tail.withUnsafeBytes { all in
            Result { () throws(WebSocketError) in try body(frame, UnsafeRawBufferPointer(rebasing: all[headerLength..<end])) }
        }
        tail.clear(retainedCapacity: 16 * 1024)
        return try outcome.get()
    }
}
