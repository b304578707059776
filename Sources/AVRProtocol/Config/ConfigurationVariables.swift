/// Every environment variable avr-core reads, with its meaning and default: what `--help`
/// prints and what the README's configuration table holds (a unit test keeps them equal).
package enum ConfigurationVariables {
    package struct Variable: Sendable, Equatable {
        package let name: String
        /// Markdown as in the README (backticks); `--help` prints it without them.
        package let meaning: String
        package let defaultValue: String
    }

    package static let all: [Variable] = [
        Variable(name: "PORT", meaning: "AudioSocket TCP port", defaultValue: "`5001`"),
        Variable(name: "AUDIOSOCKET_UUID_TIMEOUT", meaning: "an AudioSocket connection must send its UUID (Asterisk does, first thing) within this, ms (100–600000); else it is closed (see Connection budgets)", defaultValue: "`5000`"),
        Variable(name: "AUDIOSOCKET_MAX_UNIDENTIFIED", meaning: "AudioSocket connections per event loop that may wait for their UUID at once; one more closes the oldest waiting", defaultValue: "`1024`"),
        Variable(name: "HTTP_PORT", meaning: "HTTP service port; unset = no HTTP service", defaultValue: "unset (`make run`: `6001`)"),
        Variable(name: "BIND_ADDRESS", meaning: "numeric IPv4 or IPv6 address every listener binds (AudioSocket, HTTP, metrics): `127.0.0.1` or `::1` = this host only, `::` = every interface, IPv6 and IPv4; not a host name", defaultValue: "`0.0.0.0` (every IPv4 interface)"),
        Variable(name: "STS_URL", meaning: "STS endpoint: `ws://`/`wss://` (WebSocket) or `http://`/`https://` (streaming HTTP); several, separated by whitespace or commas, are tried in order and failed over to (see STS failover). Unset (and no pipeline URLs) = built-in echo; not combinable with `ASR_URL`/`LLM_URL`/`TTS_URL`", defaultValue: "unset"),
        Variable(name: "ASR_URL", meaning: "pipeline mode: speech-recognition module (`http://`/`https://`), one streaming `POST` per call; the pipeline needs `ASR_URL`, `LLM_URL` and `TTS_URL` all set and `STS_URL` unset", defaultValue: "unset"),
        Variable(name: "LLM_URL", meaning: "pipeline mode: language-model module (`http://`/`https://`), one `POST` per user turn", defaultValue: "unset"),
        Variable(name: "TTS_URL", meaning: "pipeline mode: speech-synthesis module (`http://`/`https://`), one `POST` per sentence, serialised per call", defaultValue: "unset"),
        Variable(name: "SYSTEM_MESSAGE", meaning: "pipeline mode: greeting spoken via TTS as a call starts (not a system prompt); unset = no greeting", defaultValue: "unset"),
        Variable(name: "INTERRUPT_LISTENING", meaning: "pipeline mode: `true` = caller audio is not sent to ASR while the agent speaks, no barge-in; `false` = ASR always listens, caller speech over the agent interrupts it", defaultValue: "`false`"),
        Variable(name: "PIPELINE_REQUEST_TIMEOUT", meaning: "pipeline mode: bound on connect, on the wait for the response head, and on each silence within the response body of LLM and TTS requests, ms (the ASR stream: connect only)", defaultValue: "`10000`"),
        Variable(name: "ASR_DEBOUNCE_MS", meaning: "pipeline mode: ASR chunks less than this apart make one user turn, ms (0–10000)", defaultValue: "`300`"),
        Variable(name: "WEBHOOK_URL", meaning: "webhook receiver (`http://` or `https://`); unset = no webhooks", defaultValue: "unset"),
        Variable(name: "WEBHOOK_SECRET", meaning: "sent as header `X-AVR-WEBHOOK-SECRET`, and the key of the `X-AVR-Signature` HMAC-SHA256 signature every webhook request carries (docs/PROTOCOLS.md)", defaultValue: "unset"),
        Variable(name: "WEBHOOK_TIMEOUT", meaning: "per-attempt timeout (connect + send + whole response), ms", defaultValue: "`3000`"),
        Variable(name: "WEBHOOK_RETRY", meaning: "extra attempts after a failed one (0–10)", defaultValue: "`0`"),
        Variable(name: "AMBIENT_NOISE_FILE", meaning: "raw PCM, 8 kHz mono s16le, looped under everything sent to the caller", defaultValue: "unset"),
        Variable(name: "AMBIENT_NOISE_LEVEL", meaning: "0.0 (mute) … 1.0", defaultValue: "`0.90`"),
        Variable(name: "CALL_METADATA_TTL", meaning: "seconds a `POST /call` entry waits for its AudioSocket connection", defaultValue: "`60`"),
        Variable(name: "MAX_PENDING_CALLS", meaning: "bound on registered-but-unclaimed calls; beyond it `POST /call` → 503", defaultValue: "`100000`"),
        Variable(name: "MAX_PENDING_CALL_BYTES", meaning: "bound on the bytes registered-but-unclaimed calls hold (request body + STS URL each; 65536–4294967296); beyond it `POST /call` → 503", defaultValue: "`67108864` (64 MiB)"),
        Variable(name: "HTTP_MAX_BODY", meaning: "request body limit, bytes (beyond → 413)", defaultValue: "`65536`"),
        Variable(name: "HTTP_HEADER_TIMEOUT", meaning: "a request must be complete this long after its first byte, ms (else 408); also how long a new connection may stay silent before its first request (then closed)", defaultValue: "`10000`"),
        Variable(name: "HTTP_IDLE_TIMEOUT", meaning: "idle keep-alive connections are closed after this, ms", defaultValue: "`300000`"),
        Variable(name: "STS_CONNECT_TIMEOUT", meaning: "bound on DNS + TCP connect + TLS handshake to the STS, and again on the WebSocket handshake, ms", defaultValue: "`5000`"),
        Variable(name: "STS_PING_INTERVAL", meaning: "a WebSocket ping to the STS this often while a call's connection is open, ms (0–3600000; 0 = no pings, no liveness check)", defaultValue: "`10000`"),
        Variable(name: "STS_PING_TIMEOUT", meaning: "no frame at all from the STS (pong or anything else) within this long after a ping ends the call as an STS failure, ms (1–600000); the log says `STS connection failed: no answer to ping within <N> ms`", defaultValue: "`5000`"),
        Variable(name: "STS_HTTP_HEAD_TIMEOUT", meaning: "a streaming-HTTP STS (`http://`/`https://`) must send its response head within this long of the request, ms (1–600000); else the call ends, logged `STS connection failed: STS HTTP <url>: no response within <N> ms`", defaultValue: "`10000`"),
        Variable(name: "STS_HTTP_STALL_TIMEOUT", meaning: "a streaming-HTTP STS that takes none of the request body (caller audio) for this long while bytes wait unsent ends the call, ms (1–600000), logged `STS connection failed: STS HTTP <url>: request body not read for <N> ms (<n> KiB unsent)`; meanwhile caller audio past 256 KiB unsent is dropped", defaultValue: "`10000`"),
        Variable(name: "STS_FAILOVER_ATTEMPTS", meaning: "with several `STS_URL` endpoints: connections tried, round-robin, after a call's STS connection is lost without a close frame (0–16; 0 = no failover)", defaultValue: "`3`"),
        Variable(name: "STS_FAILOVER_BUDGET_MS", meaning: "the time those attempts share from the loss, ms (100–60000); caller audio is held meanwhile (3 s at most)", defaultValue: "`3000`"),
        Variable(name: "TLS_CA_FILE", meaning: "PEM bundle of CA certificates trusted in addition to the system store (a private CA)", defaultValue: "unset"),
        Variable(name: "PLAYBACK_QUEUE_LIMIT", meaning: "most agent audio a call holds ahead of playback, ms (1000–600000); beyond it the excess is dropped, logged once per call", defaultValue: "`30000`"),
        Variable(name: "WS_MEDIA_PACING", meaning: "agent audio on Asterisk's WebSocket channel (`/media`): `core` (one 20 ms frame per tick, paced here) or `asterisk` (sent as soon as it is queued, paced by the channel's queue and its `MEDIA_XOFF`/`MEDIA_XON`); see docs/WEBSOCKET_MEDIA.md", defaultValue: "`core`"),
        Variable(name: "LOOPS", meaning: "event loops (threads), each with its own listeners via `SO_REUSEPORT`", defaultValue: "`1`"),
        Variable(name: "DRAIN_TIMEOUT", meaning: "after SIGTERM, how long calls in progress may go on, seconds (0 = end them at once)", defaultValue: "`300`"),
        Variable(name: "REDIS_URL", meaning: "`redis://[:password@]host[:port][/db]`: call registry shared by instances (see Cluster mode); unset = registry in this process", defaultValue: "unset"),
        Variable(name: "REDIS_KEY_PREFIX", meaning: "prefix of the registry's Redis keys (`<prefix><uuid>`)", defaultValue: "`avr:call:`"),
        Variable(name: "REDIS_TIMEOUT", meaning: "deadline of every Redis operation (connect + handshake, `SET`, `GETDEL`), ms", defaultValue: "`250`"),
        Variable(name: "REDIS_CLAIM_RETRY_MS", meaning: "a claim that finds the uuid neither in Redis nor locally asks Redis once more after this long (a `SET` may be in flight), ms (0–5000, 0 = never)", defaultValue: "`100`"),
        Variable(name: "LOG_LEVEL", meaning: "`debug`, `info`, `warn`, `error`", defaultValue: "`info`"),
        Variable(name: "LOG_FORMAT", meaning: "`text` (`[LEVEL]: message`) or `json` (one object per line, metadata such as `uuid` as fields)", defaultValue: "`text`"),
        Variable(name: "METRICS_PORT", meaning: "a second port serving only `GET /metrics` and `/health` (for when the HTTP port stays private); `/metrics` is on `HTTP_PORT` too", defaultValue: "unset"),
        Variable(name: "METRICS_BIND_ADDRESS", meaning: "numeric address of the `METRICS_PORT` listener alone (e.g. the interface Prometheus scrapes from, while `BIND_ADDRESS` keeps the rest private)", defaultValue: "`BIND_ADDRESS`"),
        Variable(name: "VAD_POSITIVE_SPEECH_THRESHOLD", meaning: "pipeline barge-in: speech probability (0.0–1.0, above 0) at or above which a caller frame is speech; see docs/VAD.md", defaultValue: "`0.5`"),
        Variable(name: "VAD_NEGATIVE_SPEECH_THRESHOLD", meaning: "probability below which a frame counts towards the end of speech; not above the positive threshold", defaultValue: "half the positive threshold (`0.25`)"),
        Variable(name: "VAD_MIN_SPEECH_FRAMES", meaning: "speech frames before the caller counts as speaking, i.e. before barge-in (1–100)", defaultValue: "`3`"),
        Variable(name: "VAD_PRE_SPEECH_PAD_FRAMES", meaning: "frames before the first speech frame taken as part of the utterance (0–100); does not delay barge-in", defaultValue: "`5`"),
        Variable(name: "VAD_REDEMPTION_FRAMES", meaning: "consecutive non-speech frames that end speech (1–500)", defaultValue: "`20`"),
        Variable(name: "VAD_FRAME_SAMPLES", meaning: "samples (8 kHz) per VAD frame, 80–256; the frame counts above are in these frames", defaultValue: "`160` (20 ms)"),
        Variable(name: "VAD_MODEL", meaning: "the detector: `sohn` (statistical, built in) is the only one; anything else is an error", defaultValue: "`sohn`"),
        Variable(name: "ECHO_CANCELLATION", meaning: "pipeline barge-in (`INTERRUPT_LISTENING=false`): cancel the agent's echo on the caller's audio (speexdsp) before the voice detector and ASR; `false` leaves only the measured echo gate", defaultValue: "`true`"),
        Variable(name: "ECHO_CANCELLED_ASR", meaning: "with the canceller on: ASR gets the echo-cancelled audio (`true`) or the raw line (`false`)", defaultValue: "`true`"),
    ]

    /// `--help`: usage, options, then one block per variable.
    package static func helpText(program: String) -> String {
        var text = """
        Usage: \(program) [--help | --version | --check-config]

        avr-core: real-time media server between Asterisk (AudioSocket) and AI speech-to-speech services.
        Without options it starts the server. Configuration comes from environment variables.

        Options:
          --help          print this help and exit
          --version       print the version and build (Swift, libuv, llhttp, OpenSSL) and exit
          --check-config  validate the environment and exit: 0 if usable, 2 (with one line naming the problem) if not;
                          also loads the TLS trust store and binds each port for a moment (closed at once)

        Environment variables (an empty value counts as unset):

        """
        let width = all.map(\.name.count).max() ?? 0
        for variable in all {
            let padding = String(repeating: " ", count: width - variable.name.count)
            text += "  \(variable.name)\(padding)  \(plain(variable.meaning))\n"
            text += "  \(String(repeating: " ", count: width))  default: \(plain(variable.defaultValue))\n"
        }
        return text
    }

    /// The README table row of `variable`.
    package static func markdownRow(_ variable: Variable) -> String {
        "| `\(variable.name)` | \(variable.meaning) | \(variable.defaultValue) |"
    }

    private static func plain(_ markdown: String) -> String { markdown.replacingBackticks() }
}

private extension String {
    func replacingBackticks() -> String { String(filter { $0 != "`" }) }
}

/// What the command line asks for. Anything but the known options is an error.
package enum CommandLineAction: Equatable, Sendable {
    case run
    case help
    case version
    case checkConfig
    case invalid(String)

    package static func parse(_ arguments: [String]) -> CommandLineAction {
        guard let first = arguments.first else { return .run }
        let action: CommandLineAction
        switch first {
        case "--help", "-h": action = .help
        case "--version", "-V": action = .version
        case "--check-config": action = .checkConfig
        default:
            return .invalid("unknown argument \"\(first)\" (try --help)")
        }
        if arguments.count > 1 { return .invalid("unexpected argument \"\(arguments[1])\" after \(first) (try --help)") }
        return action
    }
}
