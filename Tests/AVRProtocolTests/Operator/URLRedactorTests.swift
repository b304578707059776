import Testing
@testable import AVRProtocol

@Suite struct URLRedactorTests {
    @Test(arguments: [
        // Query values masked, names kept; path, host and port stay.
        ("Connecting to STS WebSocket: ws://localhost:6030/?from=2000&to=5001&channel=PJSIP%2F2000-00000013",
         "Connecting to STS WebSocket: ws://localhost:6030/?from=***&to=***&channel=***"),
        // Userinfo, whatever its shape; a leading colon (Redis's `:password`) stays.
        ("wss://user:s3cret@sts.example:443/v1?token=abc", "wss://***@sts.example:443/v1?token=***"),
        ("https://TOKEN@hooks.example/events", "https://***@hooks.example/events"),
        ("Redis redis://:hunter2@127.0.0.1:6379/2 connected", "Redis redis://:***@127.0.0.1:6379/2 connected"),
        // A parameter without `=` may itself be a token; an empty value stays empty; `;` separates too.
        ("http://h/p?abcdef&x=&y=1;z=2", "http://h/p?***&x=&y=***;z=***"),
        // The fragment is masked.
        ("http://h/p#access_token=xyz", "http://h/p#***"),
        ("http://h/p?a=1#frag", "http://h/p?a=***#***"),
        // A URL ends at a space or a quote; sentence punctuation after it is kept.
        ("STS WebSocket wss://sts/?k=v: TLS handshake failed", "STS WebSocket wss://sts/?k=***: TLS handshake failed"),
        (#"{"sts_url":"ws://h/x?uuid=1234"}"#, #"{"sts_url":"ws://h/x?uuid=***"}"#),
        ("(see http://h/?a=b).", "(see http://h/?a=***)."),
        // Two URLs in one line.
        ("ASR http://a/?k=1, LLM http://l:8/x?k=2", "ASR http://a/?k=***, LLM http://l:8/x?k=***"),
        // A list of endpoints (STS failover): each URL on its own; a comma inside a value stays in it.
        ("ws://a:1/?t=x,wss://u:p@b:2/?t=y", "ws://a:1/?t=***,wss://***@b:2/?t=***"),
        ("http://h/?list=a,b,c&k=v", "http://h/?list=***&k=***"),
        // Nothing to mask: unchanged.
        ("Pipeline mode: ASR http://127.0.0.1:6010/speech-to-text-stream", "Pipeline mode: ASR http://127.0.0.1:6010/speech-to-text-stream"),
        ("no url here: a://", "no url here: a://"),
        ("ratio 3://4 and ://x", "ratio 3://4 and ://x"),
        ("", ""),
        // IPv6 host with a port: its colons are not userinfo.
        ("ws://[::1]:6030/?t=1", "ws://[::1]:6030/?t=***"),
    ])
    func masks(input: String, expected: String) {
        #expect(URLRedactor.redact(in: input) == expected)
        // Idempotent: a redacted line redacts to itself.
        #expect(URLRedactor.redact(in: expected) == expected)
    }

    @Test func byteVectorsIncludingNonASCIIAndControlBytes() {
        let input: [UInt8] = Array("é ws://u:p@h/?q=".utf8) + [0xE2, 0x82, 0xAC] + Array("\nnext ws://h/?a=b".utf8)
        let expected: [UInt8] = Array("é ws://***@h/?q=***\nnext ws://h/?a=***".utf8)
        #expect(URLRedactor.redact(input) == expected)
    }

    @Test func aLineWithoutAURLIsReturnedAsItIs() {
        let text = String(repeating: "a:/b ", count: 1000)
        #expect(URLRedactor.redact(in: text) == text)
    }
}

@Suite struct IPLiteralTests {
    @Test(arguments: ["0.0.0.0", "127.0.0.1", "255.255.255.255", "10.0.0.7"])
    func ipv4(text: String) { #expect(IPLiteral.isIPv4(text) && IPLiteral.isIP(text)) }

    @Test(arguments: ["::", "::1", "fe80::1", "2001:db8::8a2e:370:7334", "1:2:3:4:5:6:7:8", "::ffff:127.0.0.1",
                      "1:2:3:4:5:6:1.2.3.4", "1::", "ABCD::ef"])
    func ipv6(text: String) { #expect(IPLiteral.isIPv6(text) && IPLiteral.isIP(text)) }

    @Test(arguments: ["", "localhost", "256.0.0.1", "1.2.3", "1.2.3.4.5", "01.2.3.4", " 1.2.3.4", "1.2.3.4 ",
                      ":::", "1:::2", "1::2::3", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7", "12345::", "::g", "fe80::1%eth0",
                      "[::1]", ":1::2", "1::2:", "1:2:3:4:5:6:7:1.2.3.4", "::1.2.3", "0.0.0.0:80"])
    func notAnAddress(text: String) { #expect(!IPLiteral.isIP(text)) }
}

@Suite struct OperatorConfigurationTests {
    private func error(_ environment: [String: String],
                       status: Configuration.FileStatus = .readable) -> String? {
        do {
            _ = try Configuration.parse(environment: environment) { _ in status }
            return nil
        } catch {
            return error.description
        }
    }

    @Test func bindAddressDefaultsToEveryIPv4InterfaceAndTakesLiterals() throws {
        #expect(try Configuration.parse(environment: [:]) { _ in .readable }.bindAddress == "0.0.0.0")
        #expect(try Configuration.parse(environment: ["BIND_ADDRESS": "::1"]) { _ in .readable }.bindAddress == "::1")
        #expect(try Configuration.parse(environment: ["BIND_ADDRESS": "[::]"]) { _ in .readable }.bindAddress == "::")
        #expect(try Configuration.parse(environment: ["BIND_ADDRESS": "127.0.0.1"]) { _ in .readable }.bindAddress == "127.0.0.1")
    }

    @Test func metricsBindAddressDefaultsToTheBindAddress() throws {
        let plain = try Configuration.parse(environment: ["BIND_ADDRESS": "::1"]) { _ in .readable }
        #expect(plain.metricsBindAddress == nil)
        let own = try Configuration.parse(environment: ["BIND_ADDRESS": "::1", "METRICS_BIND_ADDRESS": "0.0.0.0"]) { _ in .readable }
        #expect(own.bindAddress == "::1" && own.metricsBindAddress == "0.0.0.0")
        #expect(error(["METRICS_BIND_ADDRESS": "metrics.local"])?.hasPrefix(#"METRICS_BIND_ADDRESS: "metrics.local" is not"#) == true)
    }

    @Test func bindAddressThatIsNotALiteralIsAnError() {
        #expect(error(["BIND_ADDRESS": "localhost"])
            == #"BIND_ADDRESS: "localhost" is not a numeric IPv4 or IPv6 address (e.g. 0.0.0.0, 127.0.0.1, ::, ::1)"#)
        #expect(error(["BIND_ADDRESS": "0.0.0.0:5001"])?.hasPrefix("BIND_ADDRESS:") == true)
    }

    @Test func listenersNeedPortsOfTheirOwn() {
        #expect(error(["PORT": "6001", "HTTP_PORT": "6001"])
            == #"HTTP_PORT: "6001" is also PORT: each listener needs a port of its own"#)
        #expect(error(["HTTP_PORT": "6001", "METRICS_PORT": "6001"])
            == #"METRICS_PORT: "6001" is also HTTP_PORT: each listener needs a port of its own"#)
        // The default AudioSocket port counts too.
        #expect(error(["METRICS_PORT": "5001"]) == #"METRICS_PORT: "5001" is also PORT: each listener needs a port of its own"#)
        #expect(error(["PORT": "5001", "HTTP_PORT": "6001", "METRICS_PORT": "9464"]) == nil)
    }

    @Test func aFileIsMissingUnreadableOrADirectory() {
        for variable in ["TLS_CA_FILE", "AMBIENT_NOISE_FILE"] {
            #expect(error([variable: "/x"], status: .missing) == "\(variable): \"/x\" does not exist")
            #expect(error([variable: "/x"], status: .unreadable)
                == "\(variable): \"/x\" exists but cannot be read (permission denied)")
            #expect(error([variable: "/x"], status: .directory) == "\(variable): \"/x\" is a directory, not a file")
            #expect(error([variable: "/x"], status: .readable) == nil)
        }
    }
}

@Suite struct ProcessStatTests {
    /// A real line's shape, with a `comm` holding spaces and parentheses.
    static let line = Array("4242 (avr core) (x)) S 1 4242 4242 0 -1 4194560 1234 0 0 0 250 75 0 0 20 0 3 0 987654 123457536 5000 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 0\n".utf8)

    @Test func fieldsAreCountedFromTheLastParenthesis() throws {
        let stat = try #require(ProcessStat.parse(Self.line))
        #expect(stat == ProcessStat(userTicks: 250, systemTicks: 75, startTicks: 987654, virtualBytes: 123457536,
                                    residentPages: 5000))
    }

    @Test func malformedLinesAreRefused() {
        #expect(ProcessStat.parse(Array("4242 avr S 1 2".utf8)) == nil)
        #expect(ProcessStat.parse(Array("4242 (avr) S 1 2 3".utf8)) == nil)
        #expect(ProcessStat.parse(Array("4242 (avr) S 1 4242 4242 0 -1 4194560 1234 0 0 0 x 75 0 0 20 0 3 0 1 2 3".utf8)) == nil)
    }

    @Test func bootTimeComesFromTheBtimeLine() {
        let procStat = Array("cpu  1 2 3\ncpu0 1 2 3\nintr 5\nbtime 1767225600\nprocesses 10\n".utf8)
        #expect(ProcessStat.bootTime(procStat: procStat) == 1_767_225_600)
        #expect(ProcessStat.bootTime(procStat: Array("cpu 1\n".utf8)) == nil)
    }

    @Test func exposition() throws {
        let stat = try #require(ProcessStat.parse(Self.line))
        let sample = ProcessMetricsSample(stat: stat, bootTime: 1_767_225_600, ticksPerSecond: 100, pageSize: 4096,
                                          openFDs: 12, maxFDs: 1024)
        #expect(sample.cpuSeconds == 3.25)
        #expect(sample.residentBytes == 5000 * 4096)
        #expect(sample.startTimeSeconds == 1_767_225_600 + 9876.54)
        var bytes: [UInt8] = []
        sample.appendExposition(to: &bytes)
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(text.contains("# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total 3.25\n"))
        #expect(text.contains("# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes 20480000\n"))
        #expect(text.contains("process_open_fds 12\n") && text.contains("process_max_fds 1024\n"))
        #expect(text.contains("process_start_time_seconds 17672354"))
        #expect(text.split(separator: "\n").count == 18)
    }
}
