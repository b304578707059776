import AVRProtocol
import Testing

/// `StrictRequestScanner` fed the probes' own bytes, whole and split at every index (and a
/// byte at a time): the verdict and the request ends never depend on where reads split.
@Suite struct StrictRequestScannerTests {
    typealias Violation = StrictRequestScanner.Violation

    /// What a stream scanned in the given pieces came to: the stream offsets where requests
    /// ended, and the violation if there was one.
    struct Verdict: Equatable {
        var ends: [Int] = []
        var violation: Violation?
    }

    func scan(_ bytes: [UInt8], pieces: [Range<Int>]) -> Verdict {
        var scanner = StrictRequestScanner()
        var verdict = Verdict()
        for piece in pieces {
            var offset = piece.lowerBound
            while offset < piece.upperBound {
                let outcome = bytes[offset..<piece.upperBound].withUnsafeBytes { scanner.scan($0) }
                switch outcome {
                case .needMore:
                    offset = piece.upperBound
                case .requestEnd(let consumed):
                    #expect(consumed > 0)
                    offset += consumed
                    verdict.ends.append(offset)
                case .invalid(let violation):
                    verdict.violation = violation
                    // Failed for good.
                    #expect([UInt8(ascii: "G")].withUnsafeBytes { scanner.scan($0) } == .invalid(violation))
                    return verdict
                }
            }
        }
        return verdict
    }

    /// The verdict on `text` whole; checks that every split (and bytewise delivery) agrees.
    func verdict(_ text: String) -> Verdict {
        let bytes = Array(text.utf8)
        let whole = scan(bytes, pieces: [0..<bytes.count])
        for cut in 0...bytes.count {
            #expect(scan(bytes, pieces: [0..<cut, cut..<bytes.count]) == whole, "split at \(cut)")
        }
        #expect(scan(bytes, pieces: (0..<bytes.count).map { $0..<($0 + 1) }) == whole, "byte at a time")
        return whole
    }

    // MARK: Accepted

    @Test func ordinaryRequestsEndWhereTheyEnd() {
        let get = "GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
        let post = "POST /call HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"uuid\":\"\"}"
        let chunked = "POST /call HTTP/1.1\r\nhost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n4;ext=1\r\nabcd\r\nA\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n"
        let old = "GET / HTTP/1.0\r\n\r\n"
        let text = "\r\n" + get + post + chunked + old
        var ends: [Int] = []
        var offset = 2
        for part in [get, post, chunked, old] {
            offset += part.utf8.count
            ends.append(offset)
        }
        #expect(verdict(text) == Verdict(ends: ends))
    }

    @Test func absoluteFormAndOptionalWhitespaceAreFine() {
        let text = "POST http://avr:6001/call HTTP/1.1\r\nHost: avr:6001\r\nContent-Length:  2 \r\nX-Empty:\r\n\r\n{}"
        #expect(verdict(text) == Verdict(ends: [text.utf8.count]))
    }

    // MARK: Rejected: the probes

    @Test func bareCRInsideAHeadIsRejected() {
        // `\r\n\r` + a byte: llhttp 8.1 ends the head there; a proxy may not.
        #expect(verdict("GET /health HTTP/1.1\r\nHost: x\r\n\rXPOST /call HTTP/1.1\r\nHost: x\r\n\r\n").violation == .bareCR)
        #expect(verdict("GET /health HTTP/1.1\r\nHost: x\rY: z\r\n\r\n").violation == .bareCR)
        #expect(verdict("GET /health\r HTTP/1.1\r\nHost: x\r\n\r\n").violation == .bareCR)
        #expect(verdict("\rGET / HTTP/1.1\r\nHost: x\r\n\r\n").violation == .bareCR)
    }

    @Test func bareLFIsRejected() {
        #expect(verdict("GET / HTTP/1.1\nHost: x\r\n\r\n").violation == .bareLF)
        #expect(verdict("GET / HTTP/1.1\r\nHost: x\n\r\n").violation == .bareLF)
        #expect(verdict("GET / HTTP/1.1\r\nHost: x\r\n\n").violation == .bareLF)
    }

    @Test func obsFoldIsRejected() {
        #expect(verdict("GET / HTTP/1.1\r\nHost: x\r\nX-A: b\r\n c\r\n\r\n").violation == .obsFold)
        // Even inside Content-Length.
        #expect(verdict("POST /call HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\t0\r\n\r\n" + String(repeating: "a", count: 10)).violation
                == .obsFold)
    }

    @Test func nonTokenHeaderNamesAreRejected() {
        #expect(verdict("GET / HTTP/1.1\r\nHost: x\r\nX A: b\r\n\r\n").violation == .invalidHeaderName)
        #expect(verdict("GET / HTTP/1.1\r\nHost : x\r\n\r\n").violation == .invalidHeaderName)
        #expect(verdict("POST / HTTP/1.1\r\nHost: x\r\nContent-Length\t: 3\r\n\r\nabc").violation == .invalidHeaderName)
        #expect(verdict("GET / HTTP/1.1\r\nHost: x\r\n: empty\r\n\r\n").violation == .invalidHeaderName)
        #expect(verdict("GET / HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n").violation == .invalidHeaderName)
        #expect(verdict("GET / HTTP/1.1\r\nHost: x\r\nX(y): b\r\n\r\n").violation == .invalidHeaderName)
    }

    @Test func hostMustBeThereOnceInHTTP11() {
        #expect(verdict("GET /health HTTP/1.1\r\nX: y\r\n\r\n").violation == .missingHost)
        #expect(verdict("GET /health HTTP/1.1\r\nHost: a\r\nHOST: b\r\n\r\n").violation == .repeatedHost)
        #expect(verdict("GET /health HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n").violation == .repeatedHost)
        // Names that only begin like Host are other headers.
        #expect(verdict("GET / HTTP/1.1\r\nHost: a\r\nHostname: b\r\nHos: c\r\n\r\n").violation == nil)
    }

    @Test func chunkDataMustEndWithCRLF() {
        let head = "POST /call HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        #expect(verdict(head + "3\r\nabcXY0\r\n\r\n").violation == .chunkDataNotTerminated)
        #expect(verdict(head + "3\r\nabc\rX0\r\n\r\n").violation == .chunkDataNotTerminated)
        #expect(verdict(head + "3\r\nabc\n0\r\n\r\n").violation == .chunkDataNotTerminated)
        #expect(verdict(head + "zz\r\nabc\r\n0\r\n\r\n").violation == .invalidChunkSize)
        #expect(verdict(head + "\r\n").violation == .invalidChunkSize)
        #expect(verdict(head + "3\nabc\r\n0\r\n\r\n").violation == .bareLF)
        #expect(verdict(head + "11111111111111111\r\n").violation == .invalidChunkSize)
        // Trailers are header lines: the same rules.
        #expect(verdict(head + "0\r\nX: a\r\n b\r\n\r\n").violation == .obsFold)
    }

    @Test func contentLengthAndTransferEncodingMustBeUnambiguous() {
        #expect(verdict("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\na").violation == .repeatedContentLength)
        #expect(verdict("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1 2\r\n\r\na").violation == .invalidContentLength)
        #expect(verdict("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +1\r\n\r\na").violation == .invalidContentLength)
        #expect(verdict("POST / HTTP/1.1\r\nHost: x\r\nContent-Length:\r\n\r\n").violation == .invalidContentLength)
        #expect(verdict("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n").violation
                == .invalidContentLength)
        #expect(verdict("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n").violation
                == .transferEncodingNotChunked)
        #expect(verdict("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n").violation
                == .transferEncodingNotChunked)
    }

    @Test func absoluteFormTargetsGiveTheirPathAndAuthority() {
        #expect(AbsoluteFormTarget("http://avr:6001/call?x=1") == nil ? false : true)
        let target = AbsoluteFormTarget("HTTP://user@avr:6001/call?x=1")
        #expect(target?.authority == "avr:6001")
        #expect(target?.originForm == "/call?x=1")
        #expect(AbsoluteFormTarget("https://avr")?.originForm == "/")
        #expect(AbsoluteFormTarget("http://avr?q")?.originForm == "/?q")
        #expect(AbsoluteFormTarget("/call") == nil)
        #expect(AbsoluteFormTarget("httpx://a/b") == nil)
    }
}
