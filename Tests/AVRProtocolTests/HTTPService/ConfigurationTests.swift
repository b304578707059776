import Testing
@testable import AVRProtocol

private func parse(_ environment: [String: String], files: Set<String> = []) throws(ConfigurationError) -> Configuration {
    try Configuration.parse(environment: environment, fileExists: { files.contains($0) })
}

private func message(_ environment: [String: String], files: Set<String> = []) -> String? {
    do {
        _ = try parse(environment, files: files)
        return nil
    } catch {
        return error.description
    }
}

@Suite struct ConfigurationTests {
    @Test func defaults() throws {
        let configuration = try parse([:])
        #expect(configuration == Configuration())
        #expect(configuration.audioSocketPort == 5001)
        #expect(configuration.httpPort == nil)
        #expect(configuration.stsURL == nil)
        #expect(configuration.webhookURL == nil)
        #expect(configuration.webhookSecret == nil)
        #expect(configuration.webhookTimeoutMilliseconds == 3000)
        #expect(configuration.webhookRetries == 0)
        #expect(configuration.ambientNoiseFile == nil)
        #expect(configuration.ambientNoiseLevel == 0.90)
        #expect(configuration.callMetadataTTLSeconds == 60)
        #expect(configuration.maxPendingCalls == 100_000)
        #expect(configuration.maxPendingCallBytes == 64 * 1024 * 1024)
        #expect(configuration.logLevel == .info)
        #expect(configuration.httpMaxBodyBytes == 65536)
        #expect(configuration.httpHeaderTimeoutMilliseconds == 10_000)
        #expect(configuration.httpIdleTimeoutMilliseconds == 300_000)
        #expect(configuration.loops == 1)
        #expect(configuration.stsConnectTimeoutMilliseconds == 5000)
    }

    @Test func everyVariableSet() throws {
        var asked: [String] = []
        let configuration = try Configuration.parse(
            environment: [
                "PORT": "5002", "HTTP_PORT": "6001", "STS_URL": "ws://localhost:6030",
                "WEBHOOK_URL": "http://hooks:9000/events", "WEBHOOK_SECRET": "s3cr3t value",
                "WEBHOOK_TIMEOUT": "1500", "WEBHOOK_RETRY": "3", "AMBIENT_NOISE_FILE": "/noise.raw",
                "AMBIENT_NOISE_LEVEL": "0.25", "CALL_METADATA_TTL": "120", "MAX_PENDING_CALLS": "5", "MAX_PENDING_CALL_BYTES": "1048576",
                "LOG_LEVEL": "DEBUG", "HTTP_MAX_BODY": "1024", "HTTP_HEADER_TIMEOUT": "2000",
                "HTTP_IDLE_TIMEOUT": "900000", "LOOPS": "4", "STS_CONNECT_TIMEOUT": "750",
                "AUDIOSOCKET_UUID_TIMEOUT": "300", "AUDIOSOCKET_MAX_UNIDENTIFIED": "64",
                "UNRELATED": "ignored",
            ],
            fileExists: { asked.append($0); return true })
        #expect(asked == ["/noise.raw"])
        #expect(configuration.audioSocketPort == 5002)
        #expect(configuration.httpPort == 6001)
        #expect(configuration.stsURL?.description == "ws://localhost:6030")
        #expect(configuration.webhookURL?.requestTarget == "/events")
        #expect(configuration.webhookURL?.port == 9000)
        #expect(configuration.webhookSecret == "s3cr3t value")
        #expect(configuration.webhookTimeoutMilliseconds == 1500)
        #expect(configuration.webhookRetries == 3)
        #expect(configuration.ambientNoiseFile == "/noise.raw")
        #expect(configuration.ambientNoiseLevel == 0.25)
        #expect(configuration.callMetadataTTLSeconds == 120)
        #expect(configuration.maxPendingCalls == 5)
        #expect(configuration.maxPendingCallBytes == 1_048_576)
        #expect(configuration.logLevel == .debug)
        #expect(configuration.httpMaxBodyBytes == 1024)
        #expect(configuration.httpHeaderTimeoutMilliseconds == 2000)
        #expect(configuration.httpIdleTimeoutMilliseconds == 900_000)
        #expect(configuration.loops == 4)
        #expect(configuration.stsConnectTimeoutMilliseconds == 750)
        #expect(configuration.audioSocketUUIDTimeoutMilliseconds == 300)
        #expect(configuration.audioSocketMaxUnidentified == 64)
    }

    @Test func emptyStringsMeanUnset() throws {
        let names = [
            "PORT", "HTTP_PORT", "STS_URL", "WEBHOOK_URL", "WEBHOOK_SECRET", "WEBHOOK_TIMEOUT", "WEBHOOK_RETRY",
            "AMBIENT_NOISE_FILE", "AMBIENT_NOISE_LEVEL", "CALL_METADATA_TTL", "MAX_PENDING_CALLS", "LOG_LEVEL",
            "HTTP_MAX_BODY", "HTTP_HEADER_TIMEOUT", "HTTP_IDLE_TIMEOUT", "LOOPS", "STS_CONNECT_TIMEOUT", "TLS_CA_FILE",
            "AUDIOSOCKET_UUID_TIMEOUT", "AUDIOSOCKET_MAX_UNIDENTIFIED",
        ]
        let environment = Dictionary(uniqueKeysWithValues: names.map { ($0, "") })
        #expect(try parse(environment) == Configuration())
    }

    @Test func tlsURLsAreAccepted() throws {
        let configuration = try parse(["STS_URL": "wss://sts.example.com/x", "WEBHOOK_URL": "https://hooks/x"])
        #expect(configuration.stsURL?.scheme == .wss)
        #expect(configuration.stsURL?.port == 443)
        #expect(configuration.webhookURL?.scheme == .https)
        #expect(try parse(["STS_URL": "https://sts.example.com"]).stsURL?.scheme == .https)
    }

    @Test func httpSTSIsAccepted() throws {
        let configuration = try parse(["STS_URL": "http://sts:6030/stream"])
        #expect(configuration.stsURL?.scheme == .http)
        #expect(configuration.stsURL?.requestTarget == "/stream")
    }

    @Test(arguments: [
        (["PORT": "70000"], #"PORT: "70000" is not a port (1-65535)"#),
        (["PORT": "0"], #"PORT: "0" is not a port (1-65535)"#),
        (["PORT": "-1"], #"PORT: "-1" is not a port (1-65535)"#),
        (["PORT": "+80"], #"PORT: "+80" is not a port (1-65535)"#),
        (["PORT": "5001 "], #"PORT: "5001 " is not a port (1-65535)"#),
        (["PORT": "0x50"], #"PORT: "0x50" is not a port (1-65535)"#),
        (["PORT": "abc"], #"PORT: "abc" is not a port (1-65535)"#),
        (["PORT": "٥٠٠١"], #"PORT: "٥٠٠١" is not a port (1-65535)"#),
        (["PORT": "50\n01"], #"PORT: "50\n01" is not a port (1-65535)"#),
        (["HTTP_PORT": "65536"], #"HTTP_PORT: "65536" is not a port (1-65535)"#),
        (["HTTP_PORT": "99999999999999999999"], #"HTTP_PORT: "99999999999999999999" is not a port (1-65535)"#),
        (["STS_URL": "ftp://x"], #"STS_URL: "ftp://x" is not a valid URL: unknown scheme "ftp" (expected ws, wss, http or https)"#),
        (["STS_URL": "localhost:6030"], #"STS_URL: "localhost:6030" is not a valid URL: missing scheme (expected ws://, wss://, http:// or https://)"#),
        (["STS_URL": "ws://h:0"], #"STS_URL: "ws://h:0" is not a valid URL: "0" is not a port (1-65535)"#),
        (["WEBHOOK_URL": "ws://hooks"], #"WEBHOOK_URL: "ws://hooks" has an unsupported scheme (expected http:// or https://)"#),
        (["WEBHOOK_URL": "wss://hooks"], #"WEBHOOK_URL: "wss://hooks" has an unsupported scheme (expected http:// or https://)"#),
        (["WEBHOOK_URL": "hooks:9000"], #"WEBHOOK_URL: "hooks:9000" is not a valid URL: missing scheme (expected ws://, wss://, http:// or https://)"#),
        (["WEBHOOK_TIMEOUT": "abc"], #"WEBHOOK_TIMEOUT: "abc" is not a whole number of milliseconds in 1-600000"#),
        (["WEBHOOK_TIMEOUT": "0"], #"WEBHOOK_TIMEOUT: "0" is not a whole number of milliseconds in 1-600000"#),
        (["WEBHOOK_TIMEOUT": "600001"], #"WEBHOOK_TIMEOUT: "600001" is not a whole number of milliseconds in 1-600000"#),
        (["WEBHOOK_TIMEOUT": "3000.5"], #"WEBHOOK_TIMEOUT: "3000.5" is not a whole number of milliseconds in 1-600000"#),
        (["WEBHOOK_TIMEOUT": "99999999999"], #"WEBHOOK_TIMEOUT: "99999999999" is not a whole number of milliseconds in 1-600000"#),
        (["WEBHOOK_RETRY": "11"], #"WEBHOOK_RETRY: "11" is not a whole number of retries in 0-10"#),
        (["WEBHOOK_RETRY": "-1"], #"WEBHOOK_RETRY: "-1" is not a whole number of retries in 0-10"#),
        (["AMBIENT_NOISE_FILE": "/nope.raw"], #"AMBIENT_NOISE_FILE: "/nope.raw" does not exist"#),
        (["TLS_CA_FILE": "/nope.pem"], #"TLS_CA_FILE: "/nope.pem" does not exist"#),
        (["AMBIENT_NOISE_LEVEL": "1.5"], #"AMBIENT_NOISE_LEVEL: "1.5" is not a level between 0.0 and 1.0"#),
        (["CALL_METADATA_TTL": "0"], #"CALL_METADATA_TTL: "0" is not a whole number of seconds in 1-86400"#),
        (["CALL_METADATA_TTL": "86401"], #"CALL_METADATA_TTL: "86401" is not a whole number of seconds in 1-86400"#),
        (["MAX_PENDING_CALLS": "0"], #"MAX_PENDING_CALLS: "0" is not a whole number of calls in 1-10000000"#),
        (["MAX_PENDING_CALL_BYTES": "1000"], #"MAX_PENDING_CALL_BYTES: "1000" is not a whole number of bytes in 65536-4294967296"#),
        (["MAX_PENDING_CALL_BYTES": "64MiB"], #"MAX_PENDING_CALL_BYTES: "64MiB" is not a whole number of bytes in 65536-4294967296"#),
        (["LOG_LEVEL": "verbose"], #"LOG_LEVEL: "verbose" is not one of debug, info, warn, error"#),
        (["LOG_LEVEL": "warning"], #"LOG_LEVEL: "warning" is not one of debug, info, warn, error"#),
        (["HTTP_MAX_BODY": "0"], #"HTTP_MAX_BODY: "0" is not a whole number of bytes in 1-16777216"#),
        (["HTTP_HEADER_TIMEOUT": "10s"], #"HTTP_HEADER_TIMEOUT: "10s" is not a whole number of milliseconds in 1-600000"#),
        (["HTTP_IDLE_TIMEOUT": "86400001"], #"HTTP_IDLE_TIMEOUT: "86400001" is not a whole number of milliseconds in 1-86400000"#),
        (["LOOPS": "65"], #"LOOPS: "65" is not a whole number of event loops in 1-64"#),
        (["LOOPS": "0"], #"LOOPS: "0" is not a whole number of event loops in 1-64"#),
        (["AUDIOSOCKET_UUID_TIMEOUT": "99"], #"AUDIOSOCKET_UUID_TIMEOUT: "99" is not a whole number of milliseconds in 100-600000"#),
        (["AUDIOSOCKET_UUID_TIMEOUT": "5s"], #"AUDIOSOCKET_UUID_TIMEOUT: "5s" is not a whole number of milliseconds in 100-600000"#),
        (["AUDIOSOCKET_MAX_UNIDENTIFIED": "0"], #"AUDIOSOCKET_MAX_UNIDENTIFIED: "0" is not a whole number of connections in 1-1000000"#),
        (["STS_CONNECT_TIMEOUT": "-5"], #"STS_CONNECT_TIMEOUT: "-5" is not a whole number of milliseconds in 1-600000"#),
        (["WEBHOOK_SECRET": "abc\r\nX-Evil: 1"], "WEBHOOK_SECRET: the value contains a control character (not allowed in an HTTP header)"),
    ])
    func refusedValues(environment: [String: String], expected: String) {
        let text = message(environment)
        #expect(text == expected)
        #expect(text?.contains("\n") == false)
    }

    @Test(arguments: ["0", "1", "0.5", ".5", "1.0", "0.", "0.90", "000.25", "1.000"])
    func acceptedLevels(text: String) throws {
        let level = try parse(["AMBIENT_NOISE_LEVEL": text]).ambientNoiseLevel
        #expect(level >= 0 && level <= 1)
    }

    @Test(arguments: ["1.5", "-0.1", "nan", "inf", "0x1p-1", "1e-1", ".", "1..0", "0.5.5", " 0.5", "0,5", "1.0000001"])
    func refusedLevels(text: String) {
        #expect(message(["AMBIENT_NOISE_LEVEL": text]) == "AMBIENT_NOISE_LEVEL: \"\(text)\" is not a level between 0.0 and 1.0")
    }

    @Test func boundaryValuesAreAccepted() throws {
        let low = try parse(["PORT": "1", "WEBHOOK_RETRY": "0", "LOOPS": "1", "WEBHOOK_TIMEOUT": "1", "CALL_METADATA_TTL": "1"])
        #expect(low.audioSocketPort == 1 && low.webhookRetries == 0 && low.loops == 1)
        let high = try parse(["PORT": "65535", "WEBHOOK_RETRY": "10", "LOOPS": "64", "WEBHOOK_TIMEOUT": "600000", "CALL_METADATA_TTL": "86400"])
        #expect(high.audioSocketPort == 65535 && high.webhookRetries == 10 && high.loops == 64)
        #expect(high.webhookTimeoutMilliseconds == 600_000 && high.callMetadataTTLSeconds == 86400)
    }

    @Test func logLevelsInAnyCase() throws {
        #expect(try parse(["LOG_LEVEL": "warn"]).logLevel == .warn)
        #expect(try parse(["LOG_LEVEL": "Error"]).logLevel == .error)
        #expect(LogLevel.debug < .info && LogLevel.info < .warn && LogLevel.warn < .error)
        #expect(LogLevel.allCases.map(\.label) == ["DEBUG", "INFO", "WARN", "ERROR"])
    }

    @Test func secretIsNotRepeatedInTheError() {
        let text = message(["WEBHOOK_SECRET": "hunter2\n"])
        #expect(text?.contains("hunter2") == false)
    }

    @Test func firstBadVariableInTableOrderWins() {
        #expect(message(["LOOPS": "0", "PORT": "x"]) == #"PORT: "x" is not a port (1-65535)"#)
    }

    @Test func errorCarriesVariableValueAndProblem() {
        do {
            _ = try parse(["HTTP_PORT": "0"])
            Issue.record("accepted a bad port")
        } catch {
            #expect(error == ConfigurationError(variable: "HTTP_PORT", value: "0", problem: .notAPort))
        }
    }

    @Test func stsPingIntervalAndTimeout() throws {
        let defaults = Configuration()
        #expect(defaults.stsPingIntervalMilliseconds == 10_000)
        #expect(defaults.stsPingTimeoutMilliseconds == 5000)
        let set = try parse(["STS_PING_INTERVAL": "500", "STS_PING_TIMEOUT": "750"])
        #expect(set.stsPingIntervalMilliseconds == 500)
        #expect(set.stsPingTimeoutMilliseconds == 750)
        #expect(try parse(["STS_PING_INTERVAL": "0"]).stsPingIntervalMilliseconds == 0, "0: no pings")
        #expect(try parse(["STS_PING_INTERVAL": "", "STS_PING_TIMEOUT": ""]) == Configuration())
        #expect(message(["STS_PING_INTERVAL": "3600001"])
            == #"STS_PING_INTERVAL: "3600001" is not a whole number of milliseconds in 0-3600000"#)
        #expect(message(["STS_PING_INTERVAL": "10s"])
            == #"STS_PING_INTERVAL: "10s" is not a whole number of milliseconds in 0-3600000"#)
        #expect(message(["STS_PING_TIMEOUT": "0"])
            == #"STS_PING_TIMEOUT: "0" is not a whole number of milliseconds in 1-600000"#)
    }
}
