import AVRProtocol

/// What a stream from Asterisk's WebSocket channel gave, in owned copies.
private enum MediaEvent: Equatable {
    case control(MediaControlEvent)
    case refused(MediaControlError)
    case media([UInt8])
    case closed(UInt16?)
    case failed(WebSocketError)
}

/// The `/media` endpoint's inbound half: masked client frames read in place by the server
/// role of `WebSocketMessageReader` (unmasking where the bytes lie), each text message through
/// `MediaControlParser`. Invariants: split = whole (so unmasking in place never unmasks a byte
/// twice or skips one); a parsed MEDIA_START has a non-empty format; a DTMF_END digit is one
/// byte; a refused message is refused the same way every time; with flag bit 0 the input after
/// the control byte is parsed as one control message directly.
func fuzzMediaControl(_ data: UnsafeRawBufferPointer) {
    let input = SplitInput(data)
    if input.flags & 0x1 != 0 {
        let once = Result { () throws(MediaControlError) in try MediaControlParser.parse(input.stream) }
        let twice = Result { () throws(MediaControlError) in try MediaControlParser.parse(Array(input.stream)) }
        require(once == twice, "the parser answers differently for the same bytes")
        if case .success(let event) = once { check(event) }
        return
    }
    let split = readMedia(input, chunks: input.chunks)
    let whole = readMedia(input, chunks: input.whole)
    require(split == whole, "split delivery differs from whole delivery")
}

private func check(_ event: MediaControlEvent) {
    switch event {
    case .mediaStart(let start): require(!start.format.isEmpty, "MEDIA_START without a format")
    default: break
    }
}

private func readMedia(_ input: SplitInput, chunks: [Range<Int>]) -> [MediaEvent] {
    var reader = WebSocketMessageReader(maxMessageSize: 4096, role: .server)
    var events: [MediaEvent] = []
    for range in chunks {
        // The reader unmasks in place: give it a copy, as the loop gives it its read buffer.
        var bytes = Array(input.chunk(range))
        let failure = bytes.withUnsafeMutableBytes { raw -> WebSocketError? in
            do throws(WebSocketError) {
                try reader.read(UnsafeRawBufferPointer(raw)) { event in
                    switch event {
                    case .text(let text):
                        do throws(MediaControlError) {
                            let control = try MediaControlParser.parse(text)
                            check(control)
                            events.append(.control(control))
                        } catch {
                            events.append(.refused(error))
                        }
                    case .binary(let payload): events.append(.media(Array(payload)))
                    case .close(let code, _): events.append(.closed(code?.rawValue))
                    case .ping, .pong: break
                    }
                }
            } catch {
                return error
            }
            return nil
        }
        if let failure {
            events.append(.failed(failure))
            break
        }
    }
    return events
}
