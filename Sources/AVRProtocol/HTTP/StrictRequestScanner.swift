/// Checks the framing of a stream of HTTP/1.1 requests byte by byte, as the bytes arrive,
/// for what llhttp 8.1 lets through but a proxy in front of the server may read otherwise
/// (request smuggling): a CR not followed by LF (or an LF without its CR) anywhere in a
/// head, a folded header line (obs-fold), a header name with a space or another non-token
/// byte (also before the colon), a missing Host (HTTP/1.1) or a repeated one, a chunk's data
/// not followed by CRLF, and a Transfer-Encoding whose final coding is not chunked.
///
/// It also finds where each request ends (no body, `Content-Length`, or chunked with
/// trailers), so `scan` stops there: the request parser hands llhttp exactly the bytes of
/// one request and can check that llhttp saw the same end (two readings of one stream that
/// disagree are what smuggling needs).
///
/// State is a handful of counters (no buffering), so bytes may be split anywhere; a body is
/// skipped in bulk. What llhttp rejects by itself (bad methods, versions, value bytes) is
/// left to llhttp. After a violation the scanner stays failed.
package struct StrictRequestScanner: Sendable {
    package enum Violation: Error, Equatable, Sendable, CustomStringConvertible {
        case bareCR
        case bareLF
        case obsFold
        case invalidHeaderName
        case missingHost
        case repeatedHost
        case invalidContentLength
        case repeatedContentLength
        case transferEncodingNotChunked
        case invalidChunkSize
        case chunkDataNotTerminated

        package var description: String {
            switch self {
            case .bareCR: "CR not followed by LF in the request head"
            case .bareLF: "LF without CR in the request head"
            case .obsFold: "folded header line (obs-fold)"
            case .invalidHeaderName: "header name with a space or another non-token character"
            case .missingHost: "HTTP/1.1 request without Host"
            case .repeatedHost: "more than one Host header"
            case .invalidContentLength: "Content-Length is not a decimal number"
            case .repeatedContentLength: "more than one Content-Length header"
            case .transferEncodingNotChunked: "Transfer-Encoding whose final coding is not chunked"
            case .invalidChunkSize: "malformed chunk size line"
            case .chunkDataNotTerminated: "chunk data not followed by CRLF"
            }
        }
    }

    package enum Outcome: Equatable, Sendable {
        /// Every byte was scanned; the request (if one began) is not complete yet.
        case needMore
        /// A request ends after the first `consumed` bytes; the scanner waits for the next.
        case requestEnd(consumed: Int)
        case invalid(Violation)
    }

    /// Where the scanner is.
    private enum Phase: Equatable, Sendable {
        /// Before a request line (empty lines allowed).
        case start
        case requestLine
        /// At the start of a header line (`trailer`: in a chunked body's trailer section).
        case fieldStart(trailer: Bool)
        case fieldName(trailer: Bool)
        case fieldValue(trailer: Bool)
        /// A CR was read; an LF must follow, then `next`.
        case lineFeed(next: AfterLine)
        case fixedBody(remaining: UInt64)
        case chunkSize(digits: Int)
        case chunkExtension
        case chunkData(remaining: UInt64)
        case chunkDataCR
        case chunkDataLF
        case failed(Violation)
    }

    private enum AfterLine: Equatable, Sendable {
        case emptyLineBeforeRequest, requestLine, field(trailer: Bool), headEnd, trailerEnd, chunkSizeLine
    }

    /// Header names the scanner follows, as bits of `nameCandidates`.
    private static let names: [[UInt8]] = [Array("host".utf8), Array("content-length".utf8), Array("transfer-encoding".utf8)]
    private static let host: UInt8 = 1, contentLength: UInt8 = 2, transferEncoding: UInt8 = 4

    private var phase: Phase = .start
    // The request line: its last 8 bytes, to tell HTTP/1.1 (Host required) from HTTP/1.0.
    private var lineTail: UInt64 = 0
    private var hostRequired = false
    // The header line being read.
    private var nameLength = 0
    private var nameCandidates: UInt8 = 0
    private var current: UInt8 = 0
    // Content-Length value being read: digits, then only whitespace.
    private var lengthValue: UInt64 = 0
    private var lengthDigits = 0
    private var lengthDone = false
    // Transfer-Encoding value being read: its last 8 non-blank bytes (lower case) and whether
    // blanks came before the byte now read.
    private var codingTail: UInt64 = 0
    private var codingBytes = 0
    private var codingBlank = false
    // The head so far.
    private var hosts = 0
    private var contentLength: UInt64?
    private var chunked = false
    private var hasTransferEncoding = false
    private var chunkLength: UInt64 = 0

    package init() {}

    /// True between the first byte of a request and its end.
    package var inRequest: Bool {
        switch phase {
        case .start, .failed: false
        case .lineFeed(next: .emptyLineBeforeRequest): false
        default: true
        }
    }

    /// Scans `bytes`, up to the end of the request under way.
    package mutating func scan(_ bytes: UnsafeRawBufferPointer) -> Outcome {
        if case .failed(let violation) = phase { return .invalid(violation) }
        var index = 0
        let count = bytes.count
        while index < count {
            switch phase {
            case .fixedBody(let remaining):
                let take = Int(min(remaining, UInt64(count - index)))
                index += take
                if UInt64(take) == remaining {
                    phase = .start
                    return .requestEnd(consumed: index)
                }
                phase = .fixedBody(remaining: remaining - UInt64(take))
                continue
            case .chunkData(let remaining):
                let take = Int(min(remaining, UInt64(count - index)))
                index += take
                phase = UInt64(take) == remaining ? .chunkDataCR : .chunkData(remaining: remaining - UInt64(take))
                continue
            default:
                break
            }
            let byte = bytes[index]
            index += 1
            if let violation = step(byte) {
                phase = .failed(violation)
                return .invalid(violation)
            }
            if case .start = phase, requestEnded {
                requestEnded = false
                return .requestEnd(consumed: index)
            }
        }
        return .needMore
    }

    /// Set by `finishRequest` inside `step`, read once by `scan`.
    private var requestEnded = false

    // MARK: One byte of a head or of the chunk framing

    private mutating func step(_ byte: UInt8) -> Violation? {
        switch phase {
        case .start:
            switch byte {
            case 0x0D: phase = .lineFeed(next: .emptyLineBeforeRequest)
            case 0x0A: return .bareLF
            default:
                beginRequest()
                phase = .requestLine
                return requestLineByte(byte)
            }
        case .requestLine:
            return requestLineByte(byte)
        case .fieldStart(let trailer):
            switch byte {
            case 0x0D: phase = .lineFeed(next: trailer ? .trailerEnd : .headEnd)
            case 0x0A: return .bareLF
            case 0x20, 0x09: return .obsFold
            default:
                guard Self.isToken(byte) else { return .invalidHeaderName }
                nameLength = 0
                nameCandidates = trailer ? 0 : (Self.host | Self.contentLength | Self.transferEncoding)
                nameByte(byte)
                phase = .fieldName(trailer: trailer)
            }
        case .fieldName(let trailer):
            if byte == UInt8(ascii: ":") {
                return beginValue(trailer: trailer)
            }
            guard Self.isToken(byte) else { return byte == 0x0A ? .bareLF : .invalidHeaderName }
            nameByte(byte)
        case .fieldValue(let trailer):
            switch byte {
            case 0x0D: phase = .lineFeed(next: .field(trailer: trailer))
            case 0x0A: return .bareLF
            default: return valueByte(byte)
            }
        case .lineFeed(let next):
            guard byte == 0x0A else { return .bareCR }
            return lineEnded(next)
        case .chunkSize(let digits):
            if let digit = Self.hexValue(byte) {
                guard digits < 16 else { return .invalidChunkSize }
                chunkLength = chunkLength << 4 | UInt64(digit)
                phase = .chunkSize(digits: digits + 1)
                return nil
            }
            guard digits > 0 else { return .invalidChunkSize }
            switch byte {
            case 0x0D: phase = .lineFeed(next: .chunkSizeLine)
            case 0x0A: return .bareLF
            case UInt8(ascii: ";"), 0x20, 0x09: phase = .chunkExtension
            default: return .invalidChunkSize
            }
        case .chunkExtension:
            switch byte {
            case 0x0D: phase = .lineFeed(next: .chunkSizeLine)
            case 0x0A: return .bareLF
            default: break
            }
        case .chunkDataCR:
            guard byte == 0x0D else { return .chunkDataNotTerminated }
            phase = .chunkDataLF
        case .chunkDataLF:
            guard byte == 0x0A else { return .chunkDataNotTerminated }
            chunkLength = 0
            phase = .chunkSize(digits: 0)
        case .fixedBody, .chunkData, .failed:
            break // handled in `scan`
        }
        return nil
    }

    private mutating func beginRequest() {
        lineTail = 0
        hosts = 0
        contentLength = nil
        chunked = false
        hasTransferEncoding = false
        hostRequired = false
    }

    private mutating func requestLineByte(_ byte: UInt8) -> Violation? {
        switch byte {
        case 0x0D: phase = .lineFeed(next: .requestLine)
        case 0x0A: return .bareLF
        default: lineTail = lineTail << 8 | UInt64(byte)
        }
        return nil
    }

    private mutating func lineEnded(_ next: AfterLine) -> Violation? {
        switch next {
        case .emptyLineBeforeRequest:
            phase = .start
        case .requestLine:
            // "HTTP/1.1" as a big-endian 64-bit number.
            hostRequired = lineTail == 0x4854_5450_2F31_2E31
            phase = .fieldStart(trailer: false)
        case .field(let trailer):
            if !trailer, let violation = endValue() { return violation }
            phase = .fieldStart(trailer: trailer)
        case .headEnd:
            if hostRequired && hosts == 0 { return .missingHost }
            if hasTransferEncoding && !chunked { return .transferEncodingNotChunked }
            if chunked {
                chunkLength = 0
                phase = .chunkSize(digits: 0)
            } else if let contentLength, contentLength > 0 {
                phase = .fixedBody(remaining: contentLength)
            } else {
                finishRequest()
            }
        case .trailerEnd:
            finishRequest()
        case .chunkSizeLine:
            phase = chunkLength == 0 ? .fieldStart(trailer: true) : .chunkData(remaining: chunkLength)
        }
        return nil
    }

    private mutating func finishRequest() {
        phase = .start
        requestEnded = true
    }

    // MARK: Header lines

    private mutating func nameByte(_ byte: UInt8) {
        let lower = byte | (byte >= 0x41 && byte <= 0x5A ? 0x20 : 0)
        for (bit, name) in Self.names.enumerated() where nameCandidates & (1 << bit) != 0 {
            if nameLength >= name.count || name[nameLength] != lower { nameCandidates &= ~(1 << bit) }
        }
        nameLength += 1
    }

    private mutating func beginValue(trailer: Bool) -> Violation? {
        guard nameLength > 0 else { return .invalidHeaderName }
        current = 0
        for (bit, name) in Self.names.enumerated() where nameCandidates & (1 << bit) != 0 && name.count == nameLength {
            current = 1 << bit
        }
        switch current {
        case Self.host:
            hosts += 1
            if hosts > 1 { return .repeatedHost }
        case Self.contentLength:
            if contentLength != nil { return .repeatedContentLength }
            lengthValue = 0
            lengthDigits = 0
            lengthDone = false
        case Self.transferEncoding:
            hasTransferEncoding = true
            codingTail = 0
            codingBytes = 0
            codingBlank = false
        default:
            break
        }
        phase = .fieldValue(trailer: trailer)
        return nil
    }

    private mutating func valueByte(_ byte: UInt8) -> Violation? {
        let blank = byte == 0x20 || byte == 0x09
        switch current {
        case Self.contentLength:
            if blank {
                if lengthDigits > 0 { lengthDone = true }
            } else if let digit = Self.decimalValue(byte), !lengthDone {
                let (times, overflow1) = lengthValue.multipliedReportingOverflow(by: 10)
                let (sum, overflow2) = times.addingReportingOverflow(UInt64(digit))
                if overflow1 || overflow2 { return .invalidContentLength }
                lengthValue = sum
                lengthDigits += 1
            } else {
                return .invalidContentLength
            }
        case Self.transferEncoding:
            if blank {
                codingBlank = codingBytes > 0
            } else {
                if codingBlank {
                    codingTail = codingTail << 8 | 0x20
                    codingBytes += 1
                    codingBlank = false
                }
                let lower = byte | (byte >= 0x41 && byte <= 0x5A ? 0x20 : 0)
                codingTail = codingTail << 8 | UInt64(lower)
                codingBytes += 1
            }
        default:
            break
        }
        return nil
    }

    /// The value of the header line just ended is complete.
    private mutating func endValue() -> Violation? {
        switch current {
        case Self.contentLength:
            guard lengthDigits > 0 else { return .invalidContentLength }
            contentLength = lengthValue
        case Self.transferEncoding:
            // "chunked" as the final coding: the whole value, or after a comma or a blank.
            let word: UInt64 = 0x63_6875_6E6B_6564 // "chunked"
            let last7 = codingTail & 0x00FF_FFFF_FFFF_FFFF
            let before = UInt8(truncatingIfNeeded: codingTail >> 56)
            chunked = last7 == word && (codingBytes == 7 || before == UInt8(ascii: ",") || before == 0x20)
        default:
            break
        }
        current = 0
        return nil
    }

    // MARK: Bytes

    /// RFC 9110 `tchar`.
    private static func isToken(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"), UInt8(ascii: "'"),
             UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "^"), UInt8(ascii: "_"),
             UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
            true
        default:
            false
        }
    }

    private static func decimalValue(_ byte: UInt8) -> UInt8? {
        byte >= 0x30 && byte <= 0x39 ? byte - 0x30 : nil
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case 0x30...0x39: byte - 0x30
        case 0x41...0x46: byte - 0x41 + 10
        case 0x61...0x66: byte - 0x61 + 10
        default: nil
        }
    }
}
