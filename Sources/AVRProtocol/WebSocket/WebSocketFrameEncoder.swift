/// Writes client frames (RFC 6455 §5.2): always masked, FIN as asked, reserved bits clear.
/// Everything is appended to a caller-owned `[UInt8]` whose capacity the caller reuses: the
/// array grows once per frame and the payload is masked while it is copied in. The server
/// role (the media endpoint) writes unmasked frames: `appendServerFrame`, `writeServerHeader`.
package enum WebSocketFrameEncoder {
    /// Appends one unmasked frame (what a server sends) carrying `payload`.
    package static func appendServerFrame(opcode: WebSocketOpcode, payload: UnsafeRawBufferPointer, to output: inout [UInt8]) {
        precondition(!opcode.isControl || payload.count <= 125, "control frames are ≤ 125 bytes")
        appendUninitialized(count: WebSocketFrame.headerLength(payloadLength: payload.count, masked: false) + payload.count,
                            to: &output) { frame in
            let headerLength = writeHeader(fin: true, opcode: opcode, payloadLength: payload.count, maskingKey: nil, into: frame)
            if let base = payload.baseAddress, payload.count > 0 {
                frame.baseAddress!.advanced(by: headerLength).copyMemory(from: base, byteCount: payload.count)
            }
        }
    }

    /// Writes the header of an unmasked frame of `payloadLength` bytes at the start of
    /// `output` (at least 10 bytes) and returns its length; the payload goes right after it.
    package static func writeServerHeader(opcode: WebSocketOpcode, payloadLength: Int,
                                          into output: UnsafeMutableRawBufferPointer) -> Int {
        writeHeader(fin: true, opcode: opcode, payloadLength: payloadLength, maskingKey: nil, into: output)
    }

    /// Appends an unmasked close frame (server role).
    package static func appendServerClose(code: WebSocketCloseCode, reason: String = "", to output: inout [UInt8]) {
        var payload: [UInt8] = [UInt8(truncatingIfNeeded: code.rawValue >> 8), UInt8(truncatingIfNeeded: code.rawValue)]
        payload.append(contentsOf: reason.utf8.prefix(123))
        payload.withUnsafeBytes { appendServerFrame(opcode: .connectionClose, payload: $0, to: &output) }
    }

    /// Appends one masked frame carrying `payload`.
    package static func appendFrame(
        opcode: WebSocketOpcode,
        fin: Bool = true,
        payload: UnsafeRawBufferPointer,
        maskingKey: WebSocketMaskingKey,
        to output: inout [UInt8]
    ) {
        precondition(!opcode.isControl || (fin && payload.count <= 125), "control frames are unfragmented and ≤ 125 bytes")
        appendUninitialized(
            count: WebSocketFrame.headerLength(payloadLength: payload.count, masked: true) + payload.count,
            to: &output
        ) { frame in
            let headerLength = writeHeader(
                fin: fin, opcode: opcode, payloadLength: payload.count, maskingKey: maskingKey, into: frame)
            copyMasked(payload, to: UnsafeMutableRawBufferPointer(rebasing: frame[headerLength...]), key: maskingKey, phase: 0)
        }
    }

    /// Appends a close frame. With no code the frame is empty (and the peer sees 1005);
    /// `reason` must fit the 123 bytes left after the code.
    package static func appendClose(
        code: WebSocketCloseCode?,
        reason: String = "",
        maskingKey: WebSocketMaskingKey,
        to output: inout [UInt8]
    ) {
        var payload: [UInt8] = []
        if let code {
            payload.reserveCapacity(2 + reason.utf8.count)
            payload.append(UInt8(truncatingIfNeeded: code.rawValue >> 8))
            payload.append(UInt8(truncatingIfNeeded: code.rawValue))
            payload.append(contentsOf: reason.utf8)
        } else {
            precondition(reason.isEmpty, "a close reason needs a code")
        }
        precondition(payload.count <= 125, "close reason longer than 123 bytes")
        payload.withUnsafeBytes {
            appendFrame(opcode: .connectionClose, payload: $0, maskingKey: maskingKey, to: &output)
        }
    }

    package static func appendPing(payload: UnsafeRawBufferPointer, maskingKey: WebSocketMaskingKey, to output: inout [UInt8]) {
        appendFrame(opcode: .ping, payload: payload, maskingKey: maskingKey, to: &output)
    }

    /// Answers a ping: `payload` is the ping's application data, echoed back.
    package static func appendPong(payload: UnsafeRawBufferPointer, maskingKey: WebSocketMaskingKey, to output: inout [UInt8]) {
        appendFrame(opcode: .pong, payload: payload, maskingKey: maskingKey, to: &output)
    }

    // MARK: Building blocks (shared with the STS encoders)

    /// Writes a frame header at the start of `output` and returns its length, which is
    /// `WebSocketFrame.headerLength(payloadLength:masked:)`.
    static func writeHeader(
        fin: Bool,
        opcode: WebSocketOpcode,
        payloadLength: Int,
        maskingKey: WebSocketMaskingKey?,
        into output: UnsafeMutableRawBufferPointer
    ) -> Int {
        let maskBit: UInt8 = maskingKey == nil ? 0 : 0x80
        output[0] = (fin ? 0x80 : 0) | opcode.rawValue
        var index = 2
        if payloadLength <= 125 {
            output[1] = maskBit | UInt8(payloadLength)
        } else if payloadLength <= 0xFFFF {
            output[1] = maskBit | 126
            output[2] = UInt8(truncatingIfNeeded: payloadLength >> 8)
            output[3] = UInt8(truncatingIfNeeded: payloadLength)
            index = 4
        } else {
            output[1] = maskBit | 127
            let length = UInt64(payloadLength)
            for byte in 0..<8 {
                output[2 + byte] = UInt8(truncatingIfNeeded: length >> UInt64(56 - 8 * byte))
            }
            index = 10
        }
        if let key = maskingKey {
            output[index] = key.bytes.0
            output[index + 1] = key.bytes.1
            output[index + 2] = key.bytes.2
            output[index + 3] = key.bytes.3
            index += 4
        }
        return index
    }

    /// Copies `source` into the start of `destination`, XORing it with `key` as if the first
    /// byte sat at payload offset `phase`. Eight bytes per step.
    static func copyMasked(
        _ source: UnsafeRawBufferPointer,
        to destination: UnsafeMutableRawBufferPointer,
        key: WebSocketMaskingKey,
        phase: Int
    ) {
        precondition(destination.count >= source.count)
        guard let from = source.baseAddress, let to = destination.baseAddress else { return }
        let count = source.count
        let word = UInt64(key.word(phase: phase))
        let mask = word | word << 32
        var index = 0
        while index + 8 <= count {
            let value = UInt64(littleEndian: from.loadUnaligned(fromByteOffset: index, as: UInt64.self))
            to.storeBytes(of: (value ^ mask).littleEndian, toByteOffset: index, as: UInt64.self)
            index += 8
        }
        while index < count {
            to.storeBytes(
                of: from.load(fromByteOffset: index, as: UInt8.self) ^ key[phase + index],
                toByteOffset: index, as: UInt8.self)
            index += 1
        }
    }

    /// Grows `output` by `count` bytes and lets `body` fill them. The new bytes are zeroed
    /// first (the stdlib offers no uninitialised append); for frame-sized writes that memset
    /// is far cheaper than a second buffer.
    @inline(__always)
    static func appendUninitialized(count: Int, to output: inout [UInt8], _ body: (UnsafeMutableRawBufferPointer) -> Void) {
        let start = output.count
        output.append(contentsOf: repeatElement(0, count: count))
        output.withUnsafeMutableBytes { raw in
            body(UnsafeMutableRawBufferPointer(rebasing: raw[start..<(start + count)]))
        }
    }
}
