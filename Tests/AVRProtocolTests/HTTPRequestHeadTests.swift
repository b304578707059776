import AVRProtocol
import Testing

@Suite struct HTTPRequestHeadTests {
    @Test func requestLineHostFirstThenHeadersInOrder() {
        let head = HTTPRequestHead.make(method: "POST", target: "/stream?a=1", host: "sts:8443",
                                        headers: [("User-Agent", "avr-core"), ("X-UUID", "u")])
        #expect(String(decoding: head, as: UTF8.self)
                == "POST /stream?a=1 HTTP/1.1\r\nHost: sts:8443\r\nUser-Agent: avr-core\r\nX-UUID: u\r\n\r\n")
    }

    @Test func appendsAfterWhatIsThere() {
        var out = Array("x".utf8)
        HTTPRequestHead.append(method: "GET", target: "/", host: "[::1]", headers: [], to: &out)
        #expect(String(decoding: out, as: UTF8.self) == "xGET / HTTP/1.1\r\nHost: [::1]\r\n\r\n")
    }
}
