import AVRProtocol

// MARK: - Frame decoder

private enum FrameEvent: Equatable {
    case frame(WebSocketFrame, payload: [UInt8])
    case error(WebSocketError)
}

/// The server-to-client frame decoder. Invariants: a frame's header and payload are exactly
/// the bytes at its place in the stream (re-encoded with the length form the peer chose);
/// the payload range lies inside the readable bytes; split and whole delivery agree.
func fuzzWebSocketFrameDecoder(_ data: UnsafeRawBufferPointer) {
    let input = SplitInput(data)
    // A small frame limit sometimes, so "too large" is reachable with short inputs.
    let limit = input.flags & 0x1 != 0 ? 125 + Int(input.flags >> 1) * 50 : WebSocketFrameDecoder.defaultMaxFrameSize
    let split = decodeFrames(input, chunks: input.chunks, limit: limit)
    let whole = decodeFrames(input, chunks: input.whole, limit: limit)
    require(split == whole, "split delivery differs from whole delivery")
    // The in-place reader (what the STS client uses) sees the same frames, however split, and
    // never keeps more than one incomplete frame.
    let inPlace = readFramesInPlace(input, chunks: input.chunks, limit: limit)
    require(inPlace == whole, "in-place reads differ from the decoder")
}

private func readFramesInPlace(_ input: SplitInput, chunks: [Range<Int>], limit: Int) -> [FrameEvent] {
    var reader = WebSocketFrameReader(maxFrameSize: limit)
    var events: [FrameEvent] = []
    for range in chunks {
        do throws(WebSocketError) {
            try reader.read(input.chunk(range)) { frame, payload in
                events.append(.frame(frame, payload: Array(payload)))
                return true
            }
        } catch {
            events.append(.error(error))
            break
        }
        require(reader.bufferedBytes <= 10 + limit, "the reader keeps more than one frame")
    }
    return events
}

private func decodeFrames(_ input: SplitInput, chunks: [Range<Int>], limit: Int) -> [FrameEvent] {
    var decoder = WebSocketFrameDecoder(maxFrameSize: limit)
    var buffer = ByteBuffer()
    var events: [FrameEvent] = []
    var consumed = 0
    var appended = 0
    reading: for range in chunks {
        buffer.append(input.chunk(range))
        appended += range.count
        while true {
            let decoded: WebSocketFrameHeaderAndPayloadRange?
            do throws(WebSocketError) {
                decoded = try decoder.decode(&buffer)
            } catch {
                events.append(.error(error))
                break reading
            }
            guard let decoded else { break }
            let header = decoded.header
            let range = decoded.payloadRange
            require(range.count == header.payloadLength, "payload range \(range) vs length \(header.payloadLength)")
            require(range.lowerBound >= buffer.readerIndex && range.upperBound <= buffer.storage.count,
                    "payload range outside the readable bytes")
            require(header.maskingKey == nil, "server frame reported masked")
            require(header.payloadLength <= limit, "frame over the limit")
            if header.opcode.isControl { require(header.fin && header.payloadLength <= 125, "bad control frame") }
            let payload = Array(buffer.storage[range])
            // Re-encode the header in the length form found on the wire.
            let lengthCode = input.stream[consumed + 1] & 0x7F
            var encoded: [UInt8] = [(header.fin ? 0x80 : 0) | header.opcode.rawValue]
            switch lengthCode {
            case 126:
                encoded += [126, UInt8(header.payloadLength >> 8), UInt8(header.payloadLength & 0xFF)]
            case 127:
                encoded.append(127)
                for shift in stride(from: 56, through: 0, by: -8) { encoded.append(UInt8(truncatingIfNeeded: header.payloadLength >> shift)) }
            default:
                require(Int(lengthCode) == header.payloadLength, "7-bit length mismatch")
                encoded.append(lengthCode)
            }
            encoded += payload
            require(consumed + encoded.count <= appended, "frame extends past the bytes given")
            require(encoded.elementsEqual(input.stream[consumed..<(consumed + encoded.count)]),
                    "frame does not re-encode to its bytes")
            consumed += encoded.count
            events.append(.frame(header, payload: payload))
        }
    }
    return events
}

// MARK: - Message assembler (through WebSocketMessageReader)

private enum MessageEvent: Equatable {
    case text([UInt8]), binary([UInt8]), ping([UInt8]), pong([UInt8])
    case close(UInt16?, [UInt8])
    case error(WebSocketError)
}

/// Decoder + assembler as the STS client reads: fragmented messages with interleaved
/// control frames, UTF-8 checks, close frames, size limits. Invariants: delivered text and
/// close reasons are valid UTF-8 (checked by the standard library), messages respect the
/// size limit, control payloads are ≤ 125 bytes, close codes are valid on the wire, nothing
/// is delivered after a close; split and whole delivery agree.
func fuzzWebSocketMessageAssembler(_ data: UnsafeRawBufferPointer) {
    let input = SplitInput(data)
    let limit = input.flags & 0x1 != 0 ? 1 + Int(input.flags >> 1) * 60 : WebSocketMessageAssembler.defaultMaxMessageSize
    let split = readMessages(input, chunks: input.chunks, limit: limit)
    let whole = readMessages(input, chunks: input.whole, limit: limit)
    require(split == whole, "split delivery differs from whole delivery")
}

private func readMessages(_ input: SplitInput, chunks: [Range<Int>], limit: Int) -> [MessageEvent] {
    var reader = WebSocketMessageReader(maxMessageSize: limit)
    var buffer = ByteBuffer()
    var events: [MessageEvent] = []
    var closed = false
    for range in chunks {
        buffer.append(input.chunk(range))
        do throws(WebSocketError) {
            try reader.read(&buffer) { event in
                require(!closed, "event after close")
                switch event {
                case .text(let bytes):
                    require(String(validating: bytes, as: UTF8.self) != nil, "invalid UTF-8 delivered as text")
                    require(bytes.count <= limit, "text over the limit")
                    events.append(.text(Array(bytes)))
                case .binary(let bytes):
                    require(bytes.count <= limit, "binary over the limit")
                    events.append(.binary(Array(bytes)))
                case .ping(let bytes):
                    require(bytes.count <= 125, "ping over 125 bytes")
                    events.append(.ping(Array(bytes)))
                case .pong(let bytes):
                    require(bytes.count <= 125, "pong over 125 bytes")
                    events.append(.pong(Array(bytes)))
                case .close(let code, let reason):
                    if let code { require(code.isValidOnTheWire, "invalid close code delivered") }
                    else { require(reason.isEmpty, "reason without a code") }
                    require(String(validating: reason, as: UTF8.self) != nil, "invalid UTF-8 close reason")
                    require(reason.count <= 123, "close reason over 123 bytes")
                    events.append(.close(code?.rawValue, Array(reason)))
                    closed = true
                }
            }
        } catch {
            events.append(.error(error))
            break
        }
        if reader.receivedClose { require(buffer.isEmpty, "bytes kept after close") }
    }
    return events
}

// MARK: - UTF-8 validation

/// `UTF8Validator.isValid` against the standard library's validation, at every alignment
/// of the first 8 bytes (the ASCII fast path reads 8 bytes at a time).
func fuzzUTF8Validator(_ data: UnsafeRawBufferPointer) {
    for start in 0..<min(8, data.count + 1) {
        let slice = UnsafeRawBufferPointer(rebasing: data[start...])
        let expected = String(validating: slice, as: UTF8.self) != nil
        require(UTF8Validator.isValid(slice) == expected, "validator disagrees with the standard library at offset \(start)")
    }
    // And a copy at a fresh, aligned address, with a poisoned byte right after the end
    // (AddressSanitizer catches a read past it).
    let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: data.count, alignment: 16)
    defer { copy.deallocate() }
    copy.copyMemory(from: data)
    require(UTF8Validator.isValid(UnsafeRawBufferPointer(copy)) == (String(validating: data, as: UTF8.self) != nil),
            "validator disagrees on the copy")
}

// MARK: - Handshake response

private let handshakeKey = "dGhlIHNhbXBsZSBub25jZQ=="

private enum HandshakeEvent: Equatable {
    case response(WebSocketHandshakeResponse, rest: [UInt8])
    case error(WebSocketHandshakeError)
    case incomplete
}

/// The client's handshake-response parser. Invariants: it never consumes past the head it
/// reports, the bytes after the head stay in the buffer untouched, a success has status 101
/// and the right accept value; split and whole delivery agree.
func fuzzWebSocketHandshakeResponse(_ data: UnsafeRawBufferPointer) {
    let input = SplitInput(data)
    let maxHead = input.flags & 0x1 != 0 ? 32 + Int(input.flags >> 1) * 64 : WebSocketHandshakeResponseParser.defaultMaxHeadLength
    let split = parseHandshake(input, chunks: input.chunks, maxHead: maxHead)
    let whole = parseHandshake(input, chunks: input.whole, maxHead: maxHead)
    require(split == whole, "split delivery differs from whole delivery: \(split) vs \(whole)")
}

private func parseHandshake(_ input: SplitInput, chunks: [Range<Int>], maxHead: Int) -> HandshakeEvent {
    var parser = WebSocketHandshakeResponseParser(key: handshakeKey, maxHeadLength: maxHead)
    var buffer = ByteBuffer()
    var appended = 0
    for (position, range) in chunks.enumerated() {
        buffer.append(input.chunk(range))
        appended += range.count
        do throws(WebSocketHandshakeError) {
            if let response = try parser.parse(&buffer) {
                require(response.headLength <= appended && response.headLength <= maxHead, "head longer than given")
                require(buffer.readableBytes == appended - response.headLength, "consumed more than the head")
                let head = input.stream[..<response.headLength]
                require(head.suffix(4).elementsEqual([13, 10, 13, 10]), "head does not end in a blank line")
                require(response.headers.contains { $0.name.lowercased() == "sec-websocket-accept" }, "no accept")
                // The rest of the stream is the server's first frames: all of it stays.
                var rest = Array(buffer.storage[buffer.readerIndex...])
                for later in chunks[(position + 1)...] { rest += input.chunk(later) }
                require(rest.elementsEqual(input.stream[response.headLength...]), "bytes after the head changed")
                return .response(response, rest: rest)
            }
        } catch {
            return .error(error)
        }
    }
    return .incomplete
}
