/// Decodes the frames a WebSocket server sends straight from each read (the event loop's
/// read buffer) and copies only an incomplete frame: a frame that arrives whole is handed
/// over in place, its payload a view into the read; the bytes of a frame split across reads
/// wait in `tail`, which never holds more than one incomplete frame.
///
/// The same checks as ``WebSocketFrameDecoder`` (which decodes from a ``ByteBuffer``), as
/// early as the bytes allow. After an error the connection must be failed.
///
/// In the server role every frame is masked; its payload is unmasked in place, in the bytes
/// handed to `read` (the loop's read buffer, which the connection owns while the callback
/// runs) or in the tail, so the payload view is the plain data and still nothing is copied.
package struct WebSocketFrameReader: Sendable {
    package let maxFrameSize: Int
    package let role: WebSocketRole
    /// The beginning of a frame whose end has not arrived yet.
    private var tail = IncompleteFrame()
    /// Bytes copied into the tail so far (the micro-benchmarks' "bytes copied").
    package var copiedBytes: Int { tail.copiedBytes }

    package init(maxFrameSize: Int = WebSocketFrameDecoder.defaultMaxFrameSize, role: WebSocketRole = .client) {
        precondition(maxFrameSize >= 125, "every control frame must fit")
        self.maxFrameSize = maxFrameSize
        self.role = role
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
                available: view.count, maxFrameSize: maxFrameSize, role: role, byte: { view[$0] }),
                  view.count - headerLength >= frame.payloadLength else {
                tail.keep(input)
                return
            }
            let end = headerLength + frame.payloadLength
            let payload = UnsafeRawBufferPointer(rebasing: view[headerLength..<end])
            if let key = frame.maskingKey { Self.unmask(payload, key: key) }
            input = UnsafeRawBufferPointer(rebasing: view[end...])
            guard try body(frame, payload) else { return }
        }
    }

    /// XORs a client frame's payload with its key where it lies (see the type's comment).
    @inline(__always)
    private static func unmask(_ payload: UnsafeRawBufferPointer, key: WebSocketMaskingKey) {
        let writable = UnsafeMutableRawBufferPointer(mutating: payload)
        WebSocketFrameEncoder.copyMasked(payload, to: writable, key: key, phase: 0)
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
            let role = role
            let result = tail.withUnsafeBytes { held in
                Result { () throws(WebSocketError) in
                    try WebSocketFrameDecoder.header(available: held.count, maxFrameSize: maxFrameSize, role: role,
                                                     byte: { held[$0] })
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
            Result { () throws(WebSocketError) in
                let payload = UnsafeRawBufferPointer(rebasing: all[headerLength..<end])
                if let key = frame.maskingKey { Self.unmask(payload, key: key) }
                return try body(frame, payload)
            }
        }
        tail.clear(retainedCapacity: 16 * 1024)
        return try outcome.get()
    }
}
