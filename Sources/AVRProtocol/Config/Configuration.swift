/// Everything avr-core reads from its environment, validated once at start-up so that a
/// typo stops the server with one clear line instead of surfacing during a call.
/// An empty value counts as unset (a `KEY=` line in a compose file means "no value").
package struct Configuration: Sendable, Equatable {
    /// `PORT`: the AudioSocket TCP port.
    package var audioSocketPort = 5001
    /// `AUDIOSOCKET_UUID_TIMEOUT`: an AudioSocket connection that has not sent its UUID this
    /// long after it was accepted is closed. Asterisk sends the UUID as its first message,
    /// right after connecting; 5 s is ample for it and short for a connection that never will.
    package var audioSocketUUIDTimeoutMilliseconds = 5000
    /// `AUDIOSOCKET_MAX_UNIDENTIFIED`: connections per loop allowed to wait for their UUID at
    /// once; one more closes the oldest waiting. 1024: far more connections than Asterisk
    /// ever opens within the few milliseconds it takes each to send its UUID.
    package var audioSocketMaxUnidentified = 1024
    /// `HTTP_PORT`: nil means no HTTP service at all.
    package var httpPort: Int?
    /// `BIND_ADDRESS`: the numeric IPv4 or IPv6 address every listener binds (AudioSocket,
    /// HTTP, metrics). `0.0.0.0`: every IPv4 interface, as before the variable existed; `::`
    /// is every interface, IPv6 and IPv4 (libuv's bind clears `IPV6_V6ONLY`).
    package var bindAddress = "0.0.0.0"
    /// `METRICS_BIND_ADDRESS`: the metrics listener's own address (`METRICS_PORT` exists so
    /// that Prometheus can scrape from a network the HTTP API stays off); nil = `bindAddress`.
    package var metricsBindAddress: String?
    /// `STS_URL`: `ws://`/`wss://` (WebSocket) or `http://`/`https://` (streaming HTTP); the
    /// first endpoint when it lists several (`stsEndpoints`).
    package var stsURL: EndpointURL?
    /// `STS_URL`'s endpoints in failover order (`STSEndpointList`); empty when unset.
    package var stsEndpoints: [EndpointURL] = []
    /// `STS_FAILOVER_ATTEMPTS`: connections tried after a call's STS connection is lost
    /// without a close frame (with several endpoints; 0: none, the call ends as with one).
    /// 3: with two endpoints, the other one, the lost one again (restarted?), the other again.
    package var stsFailoverAttempts = 3
    /// `STS_FAILOVER_BUDGET_MS`: the time those attempts share, from the loss. 3000: the
    /// caller's audio is held meanwhile (3 s, as while a call's first connection opens).
    package var stsFailoverBudgetMilliseconds = 3000
    /// `WEBHOOK_URL`: `http://` or `https://`; nil means no webhooks.
    package var webhookURL: EndpointURL?
    /// `WEBHOOK_SECRET`: sent as `X-AVR-WEBHOOK-SECRET`.
    package var webhookSecret: String?
    /// `WEBHOOK_TIMEOUT`: per attempt.
    package var webhookTimeoutMilliseconds = 3000
    /// `WEBHOOK_RETRY`: extra attempts after a failed one.
    package var webhookRetries = 0
    /// `AMBIENT_NOISE_FILE`: raw 8 kHz s16le mono PCM, looped under everything sent.
    package var ambientNoiseFile: String?
    /// `AMBIENT_NOISE_LEVEL`: 0.0 (mute) ... 1.0.
    package var ambientNoiseLevel = 0.90
    /// `CALL_METADATA_TTL`: how long a `POST /call` waits for its AudioSocket connection.
    package var callMetadataTTLSeconds = 60
    /// `MAX_PENDING_CALLS`: bound on `POST /call` entries not yet claimed by a call.
    package var maxPendingCalls = 100_000
    /// `MAX_PENDING_CALL_BYTES`: bound on the bytes those entries hold (payload JSON + STS
    /// URL). 64 MiB: about a thousand 60 KB payloads, or far more ordinary ones.
    package var maxPendingCallBytes = 64 * 1024 * 1024
    /// `LOG_LEVEL`.
    package var logLevel = LogLevel.info
    /// `HTTP_MAX_BODY`: larger request bodies get 413.
    package var httpMaxBodyBytes = 65536
    /// `HTTP_HEADER_TIMEOUT`: a request's head must arrive within this (408 otherwise).
    package var httpHeaderTimeoutMilliseconds = 10_000
    /// `HTTP_IDLE_TIMEOUT`: long, because Asterisk's `CURL()` keeps its connection idle for
    /// the whole call.
    package var httpIdleTimeoutMilliseconds = 300_000
    /// `LOOPS`: number of event loops (threads) serving calls.
    package var loops = 1
    /// `STS_CONNECT_TIMEOUT`: TCP connect plus WebSocket handshake.
    package var stsConnectTimeoutMilliseconds = 5000
    /// `STS_PING_INTERVAL`: a WebSocket ping to the STS this often while a call is open
    /// (0: none, and no liveness check).
    package var stsPingIntervalMilliseconds = 10_000
    /// `STS_PING_TIMEOUT`: no frame at all from the STS within this long after a ping ends the
    /// call as an STS failure.
    package var stsPingTimeoutMilliseconds = 5000
    /// `STS_HTTP_HEAD_TIMEOUT`: a streaming-HTTP STS must answer the request's head with its
    /// response head within this long, or the call ends.
    package var stsHTTPHeadTimeoutMilliseconds = 10_000
    /// `STS_HTTP_STALL_TIMEOUT`: a streaming-HTTP STS that takes none of the request body for
    /// this long while caller audio waits unsent ends the call.
    package var stsHTTPStallTimeoutMilliseconds = 10_000
    /// `TLS_CA_FILE`: a PEM bundle trusted in addition to the system's CAs (a private CA).
    package var tlsCAFile: String?
    /// `PLAYBACK_QUEUE_LIMIT`: the most agent audio a call holds ahead of playback. 30 s is
    /// longer than any single spoken answer (TTS services burst a whole answer faster than real
    /// time) and bounds a call's queue at 480 KB whatever the STS sends.
    package var playbackQueueLimitMilliseconds = 30_000
    /// `WS_MEDIA_PACING`: who paces agent audio on Asterisk's WebSocket channel (`/media`).
    package var mediaPacing = MediaPacing.core
    /// `DRAIN_TIMEOUT`: after SIGTERM, how long calls in progress may go on (0: end them at
    /// once). 300 s: the drain exists to let calls finish, and most voice-agent calls end
    /// within a few minutes; a shorter default would cut exactly the calls it should protect.
    /// The orchestrator's own kill timer (`docker stop -t`, `stop_grace_period`) must be longer.
    package var drainTimeoutSeconds = 300
    /// `REDIS_URL`: the shared call registry; nil keeps the registry in this process.
    package var redisURL: RedisURL?
    /// `REDIS_KEY_PREFIX`: prepended to the uuid in every key.
    package var redisKeyPrefix = "avr:call:"
    /// `REDIS_TIMEOUT`: deadline of every Redis operation (connect, SET, GETDEL, PING).
    /// 250 ms: a Redis on the same network answers in well under a millisecond, and a call's
    /// first audio waits for its claim; a quarter of a second is the most a caller should wait
    /// before the route falls back to this instance's own registry.
    package var redisTimeoutMilliseconds = 250
    /// `REDIS_CLAIM_RETRY_MS`: after a claim found the uuid neither in Redis nor here, wait
    /// this long and ask Redis once more (0: never): the `SET` of a `POST /call` answered a
    /// moment ago may still be on its way. 100 ms: far more than a `SET` takes on a local
    /// network, and short enough that a caller without a prior `/call` hardly waits.
    package var redisClaimRetryMilliseconds = 100
    /// `LOG_FORMAT`: `text` (`[LEVEL]: message`) or `json` (one object per line).
    package var logFormat = LogFormat.text
    /// `METRICS_PORT`: a second port serving only `GET /metrics` (and `/health`); nil = none.
    package var metricsPort: Int?
    /// `ASR_URL`, `LLM_URL`, `TTS_URL`: all three set (and `STS_URL` unset) selects the
    /// pipeline; nil otherwise.
    package var pipeline: PipelineURLs?
    /// `SYSTEM_MESSAGE`: in pipeline mode, the greeting spoken via TTS as a call starts.
    package var systemMessage: String?
    /// `INTERRUPT_LISTENING`: true = caller audio is not sent to ASR while the agent speaks
    /// (and no barge-in); false = ASR always listens and the caller can barge in.
    package var interruptListening = false
    /// `PIPELINE_REQUEST_TIMEOUT`: bounds connect, time to the response head, and each idle
    /// gap in the response body of LLM and TTS requests (the ASR stream: the connect only).
    package var pipelineRequestTimeoutMilliseconds = 10_000
    /// `ASR_DEBOUNCE_MS`: ASR chunks closer together than this make one user turn.
    package var asrDebounceMilliseconds = 300

    /// The three module endpoints of the ASR → LLM → TTS pipeline.
    package struct PipelineURLs: Sendable, Equatable {
        package var asr: EndpointURL
        package var llm: EndpointURL
        package var tts: EndpointURL

        package init(asr: EndpointURL, llm: EndpointURL, tts: EndpointURL) {
            self.asr = asr
            self.llm = llm
            self.tts = tts
        }
    }
    /// `VAD_*`: the caller-side voice-activity detector of the pipeline's barge-in.
    package var vad = VADConfiguration()
    /// `ECHO_CANCELLATION`: in pipeline mode with `INTERRUPT_LISTENING=false`, cancel the
    /// agent's echo on the caller's audio before the voice detector and ASR (docs/VAD.md).
    package var echoCancellation = true
    /// `ECHO_CANCELLED_ASR`: ASR gets the echo-cancelled caller audio (true) or the raw line (false).
    package var echoCancelledASR = true

    /// `STS_URL` as routes carry it: its endpoints joined by one space (one endpoint: that
    /// URL); nil when unset.
    package var stsURLText: String? {
        stsEndpoints.isEmpty ? nil : STSEndpointList.join(stsEndpoints.map(\.description))
    }

    /// The defaults, as with an empty environment.
    package init() {}

    /// What the caller found at a path the configuration names (`AMBIENT_NOISE_FILE`,
    /// `TLS_CA_FILE`): the error then says which.
    package enum FileStatus: Sendable, Equatable {
        case readable, missing, unreadable, directory
    }

    /// Reads and validates every variable; the first unusable one is the error.
    /// `fileExists` is asked about `AMBIENT_NOISE_FILE` (the caller does the I/O).
    package static func parse(
        environment: [String: String],
        fileExists: (String) -> Bool
    ) throws(ConfigurationError) -> Configuration {
        try parse(environment: environment) { fileExists($0) ? .readable : .missing }
    }

    /// As above; `fileStatus` tells a missing file from an unreadable one or a directory.
    package static func parse(
        environment: [String: String],
        fileStatus: (String) -> FileStatus
    ) throws(ConfigurationError) -> Configuration {
        func fileExists(_ variable: String, _ path: String) throws(ConfigurationError) {
            switch fileStatus(path) {
            case .readable: return
            case .missing: throw ConfigurationError(variable: variable, value: path, problem: .fileNotFound)
            case .unreadable: throw ConfigurationError(variable: variable, value: path, problem: .fileUnreadable)
            case .directory: throw ConfigurationError(variable: variable, value: path, problem: .isADirectory)
            }
        }
        let reader = EnvironmentReader(environment: environment)
        var configuration = Configuration()
        if let port = try reader.port("PORT") { configuration.audioSocketPort = port }
        configuration.httpPort = try reader.port("HTTP_PORT")
        if let value = try reader.integer("AUDIOSOCKET_UUID_TIMEOUT", in: 100...600_000, unit: "milliseconds") {
            configuration.audioSocketUUIDTimeoutMilliseconds = value
        }
        if let value = try reader.integer("AUDIOSOCKET_MAX_UNIDENTIFIED", in: 1...1_000_000, unit: "connections") {
            configuration.audioSocketMaxUnidentified = value
        }
        if let text = reader.value("STS_URL") {
            do throws(STSEndpointList.ParseError) {
                configuration.stsEndpoints = try STSEndpointList.parse(text)
            } catch {
                switch error.reason {
                case .invalidURL(let reason):
                    throw ConfigurationError(variable: "STS_URL", value: error.entry, problem: .invalidURL(reason))
                case .empty, .tooMany:
                    throw ConfigurationError(variable: "STS_URL", value: text, problem: .badEndpointList("\(error)"))
                }
            }
            configuration.stsURL = configuration.stsEndpoints.first
        }
        if let value = try reader.integer("STS_FAILOVER_ATTEMPTS", in: 0...16, unit: "attempts") {
            configuration.stsFailoverAttempts = value
        }
        if let value = try reader.integer("STS_FAILOVER_BUDGET_MS", in: 100...60_000, unit: "milliseconds") {
            configuration.stsFailoverBudgetMilliseconds = value
        }
        if let url = try reader.url("WEBHOOK_URL") {
            guard !url.scheme.isWebSocket else {
                throw ConfigurationError(
                    variable: "WEBHOOK_URL", value: environment["WEBHOOK_URL"]!,
                    problem: .unsupportedScheme(expected: "http:// or https://"))
            }
            configuration.webhookURL = url
        }
        configuration.webhookSecret = try reader.headerValue("WEBHOOK_SECRET")
        if let value = try reader.integer("WEBHOOK_TIMEOUT", in: 1...600_000, unit: "milliseconds") {
            configuration.webhookTimeoutMilliseconds = value
        }
        if let value = try reader.integer("WEBHOOK_RETRY", in: 0...10, unit: "retries") {
            configuration.webhookRetries = value
        }
        if let path = reader.value("AMBIENT_NOISE_FILE") {
            try fileExists("AMBIENT_NOISE_FILE", path)
            configuration.ambientNoiseFile = path
        }
        if let path = reader.value("TLS_CA_FILE") {
            try fileExists("TLS_CA_FILE", path)
            configuration.tlsCAFile = path
        }
        if let level = try reader.level("AMBIENT_NOISE_LEVEL") { configuration.ambientNoiseLevel = level }
        if let value = try reader.integer("CALL_METADATA_TTL", in: 1...86_400, unit: "seconds") {
            configuration.callMetadataTTLSeconds = value
        }
        if let value = try reader.integer("MAX_PENDING_CALLS", in: 1...10_000_000, unit: "calls") {
            configuration.maxPendingCalls = value
        }
        if let value = try reader.integer("MAX_PENDING_CALL_BYTES", in: 65_536...4_294_967_296, unit: "bytes") {
            configuration.maxPendingCallBytes = value
        }
        if let text = reader.value("LOG_LEVEL") {
            guard let level = LogLevel(rawValue: text.lowercased()) else {
                throw ConfigurationError(variable: "LOG_LEVEL", value: text, problem: .unknownLogLevel)
            }
            configuration.logLevel = level
        }
        if let value = try reader.integer("HTTP_MAX_BODY", in: 1...16_777_216, unit: "bytes") {
            configuration.httpMaxBodyBytes = value
        }
        if let value = try reader.integer("HTTP_HEADER_TIMEOUT", in: 1...600_000, unit: "milliseconds") {
            configuration.httpHeaderTimeoutMilliseconds = value
        }
        if let value = try reader.integer("HTTP_IDLE_TIMEOUT", in: 1...86_400_000, unit: "milliseconds") {
            configuration.httpIdleTimeoutMilliseconds = value
        }
        if let value = try reader.integer("LOOPS", in: 1...64, unit: "event loops") {
            configuration.loops = value
        }
        if let value = try reader.integer("STS_CONNECT_TIMEOUT", in: 1...600_000, unit: "milliseconds") {
            configuration.stsConnectTimeoutMilliseconds = value
        }
        if let value = try reader.integer("STS_PING_INTERVAL", in: 0...3_600_000, unit: "milliseconds") {
            configuration.stsPingIntervalMilliseconds = value
        }
        if let value = try reader.integer("STS_PING_TIMEOUT", in: 1...600_000, unit: "milliseconds") {
            configuration.stsPingTimeoutMilliseconds = value
        }
        if let value = try reader.integer("STS_HTTP_HEAD_TIMEOUT", in: 1...600_000, unit: "milliseconds") {
            configuration.stsHTTPHeadTimeoutMilliseconds = value
        }
        if let value = try reader.integer("STS_HTTP_STALL_TIMEOUT", in: 1...600_000, unit: "milliseconds") {
            configuration.stsHTTPStallTimeoutMilliseconds = value
        }
        if let value = try reader.integer("PLAYBACK_QUEUE_LIMIT", in: 1000...600_000, unit: "milliseconds") {
            configuration.playbackQueueLimitMilliseconds = value
        }
        if let text = reader.value("WS_MEDIA_PACING") {
            guard let pacing = MediaPacing(rawValue: text.lowercased()) else {
                throw ConfigurationError(variable: "WS_MEDIA_PACING", value: text, problem: .unknownMediaPacing)
            }
            configuration.mediaPacing = pacing
        }
        if let value = try reader.integer("DRAIN_TIMEOUT", in: 0...86_400, unit: "seconds") {
            configuration.drainTimeoutSeconds = value
        }
        if let text = reader.value("REDIS_URL") {
            do {
                configuration.redisURL = try RedisURL.parse(text)
            } catch {
                // The value may hold a password: the line shows the reason only.
                throw ConfigurationError(variable: "REDIS_URL", value: "", problem: .invalidRedisURL(error.reason))
            }
        }
        if let text = reader.value("REDIS_KEY_PREFIX") {
            guard text.utf8.count <= 128, !text.utf8.contains(where: { $0 <= 0x20 || $0 == 0x7F }) else {
                throw ConfigurationError(variable: "REDIS_KEY_PREFIX", value: text, problem: .badKeyPrefix)
            }
            configuration.redisKeyPrefix = text
        }
        if let value = try reader.integer("REDIS_TIMEOUT", in: 1...60_000, unit: "milliseconds") {
            configuration.redisTimeoutMilliseconds = value
        }
        if let value = try reader.integer("REDIS_CLAIM_RETRY_MS", in: 0...5_000, unit: "milliseconds") {
            configuration.redisClaimRetryMilliseconds = value
        }
        if let text = reader.value("LOG_FORMAT") {
            guard let format = LogFormat(rawValue: text.lowercased()) else {
                throw ConfigurationError(variable: "LOG_FORMAT", value: text, problem: .unknownLogFormat)
            }
            configuration.logFormat = format
        }
        configuration.metricsPort = try reader.port("METRICS_PORT")
        try checkListeners(reader, &configuration)
        try parsePipeline(reader, into: &configuration)
        configuration.vad = try reader.vad()
        return configuration
    }

    /// `BIND_ADDRESS`, and one port per listener: two listeners on one port would fail at
    /// start-up (`EADDRINUSE`), or with `LOOPS` > 1 (`SO_REUSEPORT`) share it silently.
    private static func checkListeners(_ reader: EnvironmentReader,
                                       _ configuration: inout Configuration) throws(ConfigurationError) {
        for name in ["BIND_ADDRESS", "METRICS_BIND_ADDRESS"] {
            guard var text = reader.value(name) else { continue }
            let original = text
            if text.hasPrefix("[") && text.hasSuffix("]") { text = String(text.dropFirst().dropLast()) }
            guard IPLiteral.isIP(text) else {
                throw ConfigurationError(variable: name, value: original, problem: .notAnIPAddress)
            }
            if name == "BIND_ADDRESS" { configuration.bindAddress = text } else { configuration.metricsBindAddress = text }
        }
        let ports: [(String, Int?)] = [("PORT", configuration.audioSocketPort), ("HTTP_PORT", configuration.httpPort),
                                       ("METRICS_PORT", configuration.metricsPort)]
        for (index, (name, port)) in ports.enumerated() {
            guard let port else { continue }
            if let (other, _) = ports[..<index].first(where: { $0.1 == port }) {
                throw ConfigurationError(variable: name, value: reader.value(name) ?? String(port), problem: .samePortAs(other))
            }
        }
    }

    /// The pipeline variables, and the mode rule: `STS_URL` alone → STS; `ASR_URL`, `LLM_URL`
    /// and `TTS_URL` all set without `STS_URL` → pipeline; none → echo; any other mix is an
    /// error, because a half-configured deployment would silently run the wrong mode.
    private static func parsePipeline(_ reader: EnvironmentReader,
                                      into configuration: inout Configuration) throws(ConfigurationError) {
        let names = ["ASR_URL", "LLM_URL", "TTS_URL"]
        var urls: [EndpointURL] = []
        for name in names {
            guard let url = try reader.url(name) else { continue }
            guard !url.scheme.isWebSocket else {
                throw ConfigurationError(variable: name, value: reader.value(name)!,
                                         problem: .unsupportedScheme(expected: "http:// or https://"))
            }
            urls.append(url)
        }
        let set = names.filter { reader.value($0) != nil }
        if let sts = reader.value("STS_URL"), !set.isEmpty {
            throw ConfigurationError(variable: "STS_URL", value: sts, problem: .conflictsWithPipeline(set))
        }
        if !set.isEmpty && set.count < names.count {
            let missing = names.first { !set.contains($0) }!
            throw ConfigurationError(variable: missing, value: "", problem: .missingForPipeline(set))
        }
        if urls.count == 3 {
            configuration.pipeline = PipelineURLs(asr: urls[0], llm: urls[1], tts: urls[2])
        }
        configuration.systemMessage = reader.value("SYSTEM_MESSAGE")
        if let text = reader.value("INTERRUPT_LISTENING") {
            switch text.lowercased() {
            case "true": configuration.interruptListening = true
            case "false": configuration.interruptListening = false
            default:
                throw ConfigurationError(variable: "INTERRUPT_LISTENING", value: text, problem: .notABoolean)
            }
        }
        for (name, keyPath) in [("ECHO_CANCELLATION", \Configuration.echoCancellation),
                                ("ECHO_CANCELLED_ASR", \Configuration.echoCancelledASR)] {
            guard let text = reader.value(name) else { continue }
            switch text.lowercased() {
            case "true": configuration[keyPath: keyPath] = true
            case "false": configuration[keyPath: keyPath] = false
            default: throw ConfigurationError(variable: name, value: text, problem: .notABoolean)
            }
        }
        if let value = try reader.integer("PIPELINE_REQUEST_TIMEOUT", in: 1...600_000, unit: "milliseconds") {
            configuration.pipelineRequestTimeoutMilliseconds = value
        }
        if let value = try reader.integer("ASR_DEBOUNCE_MS", in: 0...10_000, unit: "milliseconds") {
            configuration.asrDebounceMilliseconds = value
        }
    }
}

/// Typed reads of single variables, each failing with the variable's own error line.
private struct EnvironmentReader {
    let environment: [String: String]

    /// The value, nil when unset or empty.
    func value(_ name: String) -> String? {
        guard let text = environment[name], !text.isEmpty else { return nil }
        return text
    }

    func port(_ name: String) throws(ConfigurationError) -> Int? {
        guard let text = value(name) else { return nil }
        guard let port = EndpointURL.parsePort(text.utf8) else {
            throw ConfigurationError(variable: name, value: text, problem: .notAPort)
        }
        return port
    }

    /// Decimal digits only (no sign, no spaces), within `range`.
    func integer(_ name: String, in range: ClosedRange<Int>, unit: String) throws(ConfigurationError) -> Int? {
        guard let text = value(name) else { return nil }
        let error = ConfigurationError(variable: name, value: text, problem: .notAnIntegerInRange(range, unit: unit))
        let digits = text.utf8
        // Ten digits cannot overflow; more are out of every range used here.
        guard digits.count <= 10 else { throw error }
        var number = 0
        for byte in digits {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { throw error }
            number = number * 10 + Int(byte - UInt8(ascii: "0"))
        }
        guard range.contains(number) else { throw error }
        return number
    }

    /// A plain decimal (`0.9`, `1`, `.5`, `0.`) between 0 and 1. No sign, exponent, hex,
    /// `nan` or `inf`, which `Double.init` would otherwise accept.
    func level(_ name: String) throws(ConfigurationError) -> Double? {
        guard let text = value(name) else { return nil }
        let error = ConfigurationError(variable: name, value: text, problem: .notALevel)
        var digitCount = 0
        var dotCount = 0
        for byte in text.utf8 {
            if byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") {
                digitCount += 1
            } else if byte == UInt8(ascii: ".") {
                dotCount += 1
            } else {
                throw error
            }
        }
        guard digitCount > 0, dotCount <= 1, let level = Double(text), (0.0...1.0).contains(level) else {
            throw error
        }
        return level
    }

    /// The `VAD_*` variables over the detector's defaults.
    func vad() throws(ConfigurationError) -> VADConfiguration {
        var vad = VADConfiguration()
        if let value = try level("VAD_POSITIVE_SPEECH_THRESHOLD") {
            guard value > 0 else {
                throw ConfigurationError(variable: "VAD_POSITIVE_SPEECH_THRESHOLD",
                                         value: environment["VAD_POSITIVE_SPEECH_THRESHOLD"]!, problem: .zeroSpeechThreshold)
            }
            vad.positiveSpeechThreshold = Float(value)
        }
        // Unset, the negative threshold is half the positive one (as the defaults are).
        vad.negativeSpeechThreshold = vad.positiveSpeechThreshold / 2
        if let value = try level("VAD_NEGATIVE_SPEECH_THRESHOLD") {
            guard Float(value) <= vad.positiveSpeechThreshold else {
                throw ConfigurationError(
                    variable: "VAD_NEGATIVE_SPEECH_THRESHOLD", value: environment["VAD_NEGATIVE_SPEECH_THRESHOLD"]!,
                    problem: .negativeAbovePositiveThreshold(positive: environment["VAD_POSITIVE_SPEECH_THRESHOLD"] ?? "0.5"))
            }
            vad.negativeSpeechThreshold = Float(value)
        }
        if let value = try integer("VAD_MIN_SPEECH_FRAMES", in: 1...100, unit: "frames") { vad.minSpeechFrames = value }
        if let value = try integer("VAD_PRE_SPEECH_PAD_FRAMES", in: 0...100, unit: "frames") { vad.preSpeechPadFrames = value }
        if let value = try integer("VAD_REDEMPTION_FRAMES", in: 1...500, unit: "frames") { vad.redemptionFrames = value }
        if let value = try integer("VAD_FRAME_SAMPLES", in: VADConfiguration.frameSampleRange, unit: "samples") {
            vad.frameSamples = value
        }
        if let text = value("VAD_MODEL") {
            guard let model = VADConfiguration.Model(rawValue: text.lowercased()) else {
                throw ConfigurationError(variable: "VAD_MODEL", value: text, problem: .unknownVADModel)
            }
            vad.model = model
        }
        return vad
    }

    func url(_ name: String) throws(ConfigurationError) -> EndpointURL? {
        guard let text = value(name) else { return nil }
        do {
            return try EndpointURL.parse(text)
        } catch {
            throw ConfigurationError(variable: name, value: text, problem: .invalidURL(error))
        }
    }

    /// A value that goes into an HTTP header: no control characters (a newline would
    /// inject a header).
    func headerValue(_ name: String) throws(ConfigurationError) -> String? {
        guard let text = value(name) else { return nil }
        if text.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F }) {
            throw ConfigurationError(variable: name, value: text, problem: .controlCharacterInHeaderValue)
        }
        return text
    }
}
