/// What the peer said, one complete message or control frame at a time. The bytes are a view
/// valid only while the `deliver` closure that receives the event runs: usually they are
/// the frame's payload still in the read buffer (no copy); for a fragmented message, the
/// assembler's reassembly buffer.
package enum WebSocketEvent {
    /// A complete text message, already checked to be valid UTF-8.
    case text(UnsafeRawBufferPointer)
    case binary(UnsafeRawBufferPointer)
    /// Answer with a pong carrying the same bytes.
    case ping(UnsafeRawBufferPointer)
    case pong(UnsafeRawBufferPointer)
    /// `code` is nil when the close frame had no payload (report 1005 in that case); the
    /// reason is valid UTF-8.
    case close(code: WebSocketCloseCode?, reason: UnsafeRawBufferPointer)
}

@available(*, unavailable)
extension WebSocketEvent: Sendable {}

/// Turns decoded frames into messages (RFC 6455 §5.4): reassembles fragmented text and
/// binary messages, lets control frames interleave, enforces the message size limit
/// (→ close 1009), validates text as UTF-8 (→ 1007) and checks close frames (§5.5.1, §7.4).
/// An unfragmented message — nearly all STS traffic — is delivered straight from the read
/// buffer; only fragments are copied, into one reusable buffer.
package struct WebSocketMessageAssembler: Sendable {
    package static let defaultMaxMessageSize = 1 << 20
    /// Reassembly capacity above this is released after each message, so one huge message
    /// does not pin memory for the rest of a call.
    static let retainedCapacity = 64 * 1024

    package let maxMessageSize: Int
    private var fragmentedOpcode: WebSocketOpcode?
    private var fragments: [UInt8] = []

    package init(maxMessageSize: Int = WebSocketMessageAssembler.defaultMaxMessageSize) {
        self.maxMessageSize = maxMessageSize
    }

    /// Whether a fragmented message has started and not yet finished.
    package var isAssembling: Bool { fragmentedOpcode != nil }

    /// Feeds one frame (header and unmasked payload); calls `deliver` when it completes a
    /// message or is a control frame.
    package mutating func receive(
        _ frame: WebSocketFrame,
        payload: UnsafeRawBufferPointer,
        deliver: (WebSocketEvent) -> Void
    ) throws(WebSocketError) {
        switch frame.opcode {
        case .ping:
            deliver(.ping(payload))
        case .pong:
            deliver(.pong(payload))
        case .connectionClose:
            try deliverClose(payload, deliver: deliver)
        case .text, .binary:
            guard fragmentedOpcode == nil else { throw .expectedContinuation }
            guard payload.count <= maxMessageSize else { throw .messageTooLarge }
            if frame.fin {
                try deliverMessage(frame.opcode, payload, deliver: deliver)
            } else {
                fragmentedOpcode = frame.opcode
                fragments.append(contentsOf: payload)
            }
        case .continuation:
            guard let opcode = fragmentedOpcode else { throw .unexpectedContinuation }
            guard payload.count <= maxMessageSize - fragments.count else { throw .messageTooLarge }
            fragments.append(contentsOf: payload)
            if frame.fin {
                defer { resetFragments() }
                // `withUnsafeBytes` rethrows untyped errors; carry ours out as a value.
                let failure = fragments.withUnsafeBytes { (bytes) -> WebSocketError? in
                    do throws(WebSocketError) { try deliverMessage(opcode, bytes, deliver: deliver) } catch { return error }
                    return nil
                }
                if let failure { throw failure }
            }
        }
    }

    private func deliverMessage(
        _ opcode: WebSocketOpcode,
        _ bytes: UnsafeRawBufferPointer,
        deliver: (WebSocketEvent) -> Void
    ) throws(WebSocketError) {
        if opcode == .text {
            guard UTF8Validator.isValid(bytes) else { throw .invalidUTF8 }
            deliver(.text(bytes))
        } else {
            deliver(.binary(bytes))
        }
    }

    private func deliverClose(_ payload: UnsafeRawBufferPointer, deliver: (WebSocketEvent) -> Void) throws(WebSocketError) {
        switch payload.count {
        case 0:
            deliver(.close(code: nil, reason: UnsafeRawBufferPointer(rebasing: payload[0..<0])))
        case 1:
            throw .invalidClosePayload
        default:
            let code = WebSocketCloseCode(UInt16(payload[0]) << 8 | UInt16(payload[1]))
            guard code.isValidOnTheWire else { throw .invalidCloseCode(code.rawValue) }
            let reason = UnsafeRawBufferPointer(rebasing: payload[2...])
            guard UTF8Validator.isValid(reason) else { throw .invalidUTF8 }
            deliver(.close(code: code, reason: reason))
        }
    }

    private mutating func resetFragments() {
        fragmentedOpcode = nil
        if fragments.capacity > Self.retainedCapacity {
            fragments = []
        } else {
            fragments.removeAll(keepingCapacity: true)
        }
    }
}

/// The inbound half of a WebSocket client in one call: decodes every complete frame in the
/// read buffer and delivers messages through a `WebSocketMessageAssembler`. After a close
/// frame it stops; whatever follows is discarded (RFC 6455 §5.5.1: nothing comes after close).
package struct WebSocketMessageReader: Sendable {
    package private(set) var decoder: WebSocketFrameDecoder
    package private(set) var frames: WebSocketFrameReader
    package private(set) var assembler: WebSocketMessageAssembler
    package private(set) var receivedClose = false

    /// `role`: `.server` reads masked client frames (the media endpoint); the
    /// ``ByteBuffer`` path below reads server frames only.
    package init(maxMessageSize: Int = WebSocketMessageAssembler.defaultMaxMessageSize, role: WebSocketRole = .client) {
        decoder = WebSocketFrameDecoder(maxFrameSize: max(maxMessageSize, 125))
        frames = WebSocketFrameReader(maxFrameSize: max(maxMessageSize, 125), role: role)
        assembler = WebSocketMessageAssembler(maxMessageSize: maxMessageSize)
    }

    /// Consumes every complete frame of one read, in place: a message that arrives whole is
    /// delivered as a view into `bytes`; only an incomplete frame is copied (see
    /// ``WebSocketFrameReader``). Nothing is read after a close frame. On error, fail the
    /// connection with `error.closeCode`.
    package mutating func read(_ bytes: UnsafeRawBufferPointer, deliver: (WebSocketEvent) -> Void) throws(WebSocketError) {
        guard !receivedClose else { return }
        try frames.read(bytes) { (frame, payload) throws(WebSocketError) -> Bool in
            try assembler.receive(frame, payload: payload, deliver: deliver)
            if frame.opcode == .connectionClose {
                receivedClose = true
                return false
            }
            return true
        }
        if receivedClose { frames.releaseStorage() }
    }

    /// The same from a ``ByteBuffer`` (tests, fuzzing): consumes every complete frame in
    /// `buffer`; incomplete trailing bytes stay for the next read.
    package mutating func read(_ buffer: inout ByteBuffer, deliver: (WebSocketEvent) -> Void) throws(WebSocketError) {
        if receivedClose {
            buffer.clear()
            return
        }
        while let frame = try decoder.decode(&buffer) {
            let failure = buffer.storage.withUnsafeBytes { (storage) -> WebSocketError? in
                do throws(WebSocketError) {
                    try assembler.receive(
                        frame.header, payload: UnsafeRawBufferPointer(rebasing: storage[frame.payloadRange]),
                        deliver: deliver)
                } catch {
                    return error
                }
                return nil
            }
            if let failure { throw failure }
            if frame.header.opcode == .connectionClose {
                receivedClose = true
                decoder.consumeReturnedFrame(&buffer)
                buffer.clear()
                return
            }
        }
    }
}
