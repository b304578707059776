@testable import AVRCore
import AVRProtocol

// MARK: - Request parser (llhttp)

private struct ParsedRequest: Equatable {
    let method: String
    let target: String
    let headers: [String]
    let body: [UInt8]
    let keepAlive: Bool
    let end: Int // stream offset just past the request

    init(_ request: HTTPRequest, end: Int) {
        method = request.method
        target = request.target
        headers = request.headers.map { $0.name + ":" + $0.value }
        body = request.body
        keepAlive = request.keepAlive
        self.end = end
    }
}

private enum RequestEvent: Equatable {
    case request(ParsedRequest)
    case failure
}


/// The server's request parser, fed as `HTTPConnection` feeds it: after a complete request
/// the unconsumed rest of the read is fed again (pipelining). Invariants: `consumed` is
/// within the bytes given; bodies and headers respect the limits; split and whole delivery
/// give the same requests, ending at the same stream offsets, and both fail or neither.
func fuzzHTTPRequestParser(_ data: UnsafeRawBufferPointer) {
    let input = SplitInput(data)
    var limits = HTTPRequestParser.Limits()
    if input.flags & 0x1 != 0 {
        limits.maxHeaderBytes = 16 + Int(input.flags >> 1) * 32
        limits.maxBodyBytes = Int(input.flags >> 1) * 16
    }
    let split = parseRequests(input, chunks: input.chunks, limits: limits)
    let whole = parseRequests(input, chunks: input.whole, limits: limits)
    require(split == whole, "split delivery differs from whole delivery:\n\(split)\n\(whole)")
}

private func parseRequests(_ input: SplitInput, chunks: [Range<Int>], limits: HTTPRequestParser.Limits) -> [RequestEvent] {
    let parser = HTTPRequestParser(limits: limits)
    var events: [RequestEvent] = []
    var offset = 0 // stream bytes consumed so far
    for range in chunks {
        var bytes = input.chunk(range)
        while !bytes.isEmpty {
            switch parser.feed(bytes) {
            case .needMore:
                offset += bytes.count
                bytes = UnsafeRawBufferPointer(rebasing: bytes[bytes.count...])
            case .request(let request, let consumed):
                require(consumed >= 0 && consumed <= bytes.count, "consumed \(consumed) of \(bytes.count)")
                require(request.body.count <= limits.maxBodyBytes, "body over the limit")
                // Counted in scalars: decoding turns each invalid byte sequence into one U+FFFD, so
                // scalars never outnumber the bytes the limit counted.
                let headBytes = request.headers.reduce(request.target.unicodeScalars.count) {
                    $0 + $1.name.unicodeScalars.count + $1.value.unicodeScalars.count
                }
                require(headBytes <= limits.maxHeaderBytes, "headers over the limit: \(headBytes)")
                offset += consumed
                events.append(.request(ParsedRequest(request, end: offset)))
                bytes = UnsafeRawBufferPointer(rebasing: bytes[consumed...])
            case .failure:
                events.append(.failure)
                return events
            }
        }
    }
    return events
}

// MARK: - Response parser (llhttp)

private struct ParsedResponse: Equatable {
    let status: Int
    let headers: [String]
    let body: [UInt8]
    let keepAlive: Bool
    let end: Int
}

private enum ResponseEvent: Equatable {
    case response(ParsedResponse)
    case failure
    case atEOF(complete: Bool)
}

/// The client's response parser, fed as the pooled client feeds it, with the next response
/// on a kept-alive connection parsed after `reset()`, and `finishAtEOF` at the end of the
/// stream. Invariants: `consumed` within the bytes given; the body bound holds; split and
/// whole delivery agree.
func fuzzHTTPResponseParser(_ data: UnsafeRawBufferPointer) {
    let input = SplitInput(data)
    let maxHeader = input.flags & 0x1 != 0 ? 16 + Int(input.flags >> 1) * 32 : 16 * 1024
    let maxBody = input.flags & 0x2 != 0 ? Int(input.flags >> 2) * 16 : 1 << 20
    let split = parseResponses(input, chunks: input.chunks, maxHeader: maxHeader, maxBody: maxBody)
    let whole = parseResponses(input, chunks: input.whole, maxHeader: maxHeader, maxBody: maxBody)
    require(split == whole, "split delivery differs from whole delivery:\n\(split)\n\(whole)")
}

private final class BodySink {
    var bytes: [UInt8] = []
}

private func parseResponses(_ input: SplitInput, chunks: [Range<Int>], maxHeader: Int, maxBody: Int) -> [ResponseEvent] {
    let parser = HTTPResponseParser(maxHeaderBytes: maxHeader)
    let sink = BodySink()
    var headSeen = false
    parser.onHead = { headSeen = true }
    parser.onBody = { chunk in
        require(headSeen, "body before head")
        guard sink.bytes.count + chunk.count <= maxBody else { return false }
        sink.bytes.append(contentsOf: chunk)
        return true
    }
    var events: [ResponseEvent] = []
    var offset = 0
    func complete() {
        events.append(.response(ParsedResponse(status: parser.status, headers: parser.headers.map { $0.name + ":" + $0.value },
                                                body: sink.bytes, keepAlive: parser.keepAlive, end: offset)))
        require(headSeen, "complete without a head")
        sink.bytes = []
        headSeen = false
        parser.reset()
    }
    for range in chunks {
        var bytes = input.chunk(range)
        while !bytes.isEmpty {
            switch parser.feed(bytes) {
            case .needMore:
                offset += bytes.count
                bytes = UnsafeRawBufferPointer(rebasing: bytes[bytes.count...])
            case .complete(let consumed):
                require(consumed >= 0 && consumed <= bytes.count, "consumed \(consumed) of \(bytes.count)")
                offset += consumed
                complete()
                bytes = UnsafeRawBufferPointer(rebasing: bytes[consumed...])
            case .failure:
                events.append(.failure)
                return events
            }
        }
    }
    switch parser.finishAtEOF() {
    case .complete: events.append(.atEOF(complete: true)); complete()
    case .failure: events.append(.atEOF(complete: false))
    case .needMore: require(false, "needMore at EOF")
    }
    return events
}

// MARK: - Strict head check (StrictRequestScanner in front of llhttp)

private enum ScanEvent: Equatable {
    case end(Int) // stream offset just past a request
    case invalid(StrictRequestScanner.Violation)
}

/// `StrictRequestScanner` alone, and `HTTPRequestParser` with it (strict) and without it
/// (llhttp alone). Invariants: the scanner's verdict and request ends are the same split and
/// whole; the strict parser ends requests only where the scanner ends them and where llhttp
/// alone ends them too (it never accepts a request the two would frame differently, nor one
/// the scanner rejects).
func fuzzHTTPHeadCheck(_ data: UnsafeRawBufferPointer) {
    let input = SplitInput(data)
    let split = scanRequests(input, chunks: input.chunks)
    let whole = scanRequests(input, chunks: input.whole)
    require(split == whole, "scanner: split delivery differs from whole delivery:\n\(split)\n\(whole)")

    var lenient = HTTPRequestParser.Limits()
    lenient.strict = false
    let strictEnds = requestEnds(parseRequests(input, chunks: input.whole, limits: .init()))
    let lenientEnds = requestEnds(parseRequests(input, chunks: input.whole, limits: lenient))
    let scannerEnds = whole.compactMap { if case .end(let offset) = $0 { offset } else { nil } }
    require(strictEnds.count <= scannerEnds.count && Array(scannerEnds.prefix(strictEnds.count)) == strictEnds,
            "strict parser ended requests the scanner did not: \(strictEnds) vs \(scannerEnds)")
    require(strictEnds.count <= lenientEnds.count && Array(lenientEnds.prefix(strictEnds.count)) == strictEnds,
            "strict parser ended requests llhttp alone frames otherwise: \(strictEnds) vs \(lenientEnds)")
}

private func requestEnds(_ events: [RequestEvent]) -> [Int] {
    events.compactMap { if case .request(let request) = $0 { request.end } else { nil } }
}

private func scanRequests(_ input: SplitInput, chunks: [Range<Int>]) -> [ScanEvent] {
    var scanner = StrictRequestScanner()
    var events: [ScanEvent] = []
    for range in chunks {
        var offset = range.lowerBound
        while offset < range.upperBound {
            switch scanner.scan(input.chunk(offset..<range.upperBound)) {
            case .needMore:
                offset = range.upperBound
            case .requestEnd(let consumed):
                require(consumed > 0 && consumed <= range.upperBound - offset, "consumed \(consumed)")
                offset += consumed
                events.append(.end(offset))
            case .invalid(let violation):
                events.append(.invalid(violation))
                return events
            }
        }
    }
    return events
}
