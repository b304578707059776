import AVRBenchSupport

/// How the simulated Asterisk reaches avr-core.
enum Ingress: String {
    /// `AudioSocket()` / `Dial(AudioSocket/...)`: the AudioSocket port (`--port`).
    case audiosocket
    /// `Dial(WebSocket/...)` (chan_websocket): a WebSocket client on the HTTP port's `/media`
    /// (`--media-port`): upgrade, `MEDIA_START`, masked binary frames of 20 ms audio.
    case websocket
}

/// What one run of `avr-loadgen` plays.
struct LoadConfig {
    var host = "127.0.0.1"
    var port = 5001
    /// nil: no `POST /call` (the call arrives with a UUID the server never saw).
    var httpPort: Int?
    var ingress = Ingress.audiosocket
    /// WebSocket ingress: the port serving `/media` (avr-core's HTTP port).
    var mediaPort = 0
    /// WebSocket ingress: control messages as JSON (`f(json)`) instead of plain text.
    var jsonControl = false
    var calls = 1
    var durationSeconds = 10.0
    /// Calls started per second.
    var rampPerSecond = 100.0
    /// The codec of every call, or nil: a mix (call id modulo 4: slin, μ-law, A-law, slin16).
    var codec: CallerCodec? = .slin
    var content = CallerContent.tone
    /// Churn: calls last a random time (exponential, this mean, clamped to 0.1…4 × mean) and
    /// each ended call is replaced by a new one until `--duration` is over. 0: every call
    /// lasts `--duration`.
    var churnMeanSeconds = 0.0
    /// Churn: a file to write one line per finished call (uuid, codec, times, outcome).
    var callsOut: String?
    /// Seconds between progress lines on stderr (0: none).
    var progressSeconds = 0.0
    /// A DTMF `5` every this many seconds (0: none).
    var dtmfEverySeconds = 0.0
    /// After the last frame is sent, how long to wait for echoes before hanging up.
    var graceSeconds = 0.6
    /// Whether the STS echoes (loss and latency are then meaningful).
    var expectEcho = true
    var wavIn: String?
    var recordOut: String?
    /// Pipeline bench: where to write each agent-audio marker heard (see `SimulatedCall`).
    var onsetsOut: String?
    /// A 2-wire line's echo: each frame sent carries what the caller heard `lineEchoFrames`
    /// frames earlier, this many dB quieter (the echo return loss). nil: no echo. 8 kHz slin only.
    var lineEchoDecibels: Float?
    var lineEchoFrames = 3
    /// Whether each frame carries its stamp. Not with a line echo (it would be mixed away) nor
    /// with `--content quiet`: a stamp is a click every 20 ms, which an echo canceller fed a
    /// periodic agent signal learns to "cancel", as no caller's voice would let it.
    var stampsFrames: Bool { lineEchoDecibels == nil && content != .quiet }

    static func parse() -> LoadConfig {
        var arguments = Arguments()
        var config = LoadConfig()
        if arguments.flag("help") {
            printLine("""
            avr-loadgen: N simulated Asterisk calls against avr-core
              --host 127.0.0.1 --port 5001 [--http-port 6001 (POST /call first)]
              --ingress audiosocket|websocket (websocket: Asterisk's WebSocket channel on
                --media-port's /media, MEDIA_START then masked binary frames; --json-control
                writes its events as JSON, as f(json) does)
              --calls N --duration S --ramp CALLS_PER_SECOND --codec slin|ulaw|alaw|slin16|mix
              --content tone|noise|sawtooth|loud|quiet (loud: half noise, half sawtooth, full scale;
                quiet: −50 dBFS noise, a caller who listens)
              --churn MEAN_S (random call lengths; ended calls replaced until --duration is over)
              --calls-out FILE (one line per finished call) --progress S (status on stderr)
              --dtmf-every S --grace S --no-echo (STS does not echo)
              --wav in.wav --record out.wav (one call: play a WAV, record what came back)
              --onsets-out FILE (pipeline bench: "uuid turn unix_us" per marked TTS answer heard)
              --line-echo-db ERL [--line-echo-ms 60] (a 2-wire line: what the caller hears comes
                back in what it sends, ERL dB quieter, the delay later; --codec slin only)
            Prints one JSON result line on stdout.
            """)
            exit(0)
        }
        config.host = arguments.string("host", default: config.host)!
        config.port = arguments.int("port", default: config.port)
        if let text = arguments.string("http-port") {
            guard let port = Int(text) else { Arguments.fail("--http-port wants a port") }
            config.httpPort = port
        }
        let ingress = arguments.string("ingress", default: "audiosocket")!
        guard let knownIngress = Ingress(rawValue: ingress) else { Arguments.fail("unknown ingress \(ingress)") }
        config.ingress = knownIngress
        config.mediaPort = arguments.int("media-port", default: config.httpPort ?? 0)
        config.jsonControl = arguments.flag("json-control")
        if config.ingress == .websocket && config.mediaPort <= 0 {
            Arguments.fail("--ingress websocket needs --media-port (or --http-port)")
        }
        config.calls = arguments.int("calls", default: config.calls)
        config.durationSeconds = arguments.double("duration", default: config.durationSeconds)
        config.rampPerSecond = arguments.double("ramp", default: config.rampPerSecond)
        let codec = arguments.string("codec", default: "slin")!
        if codec == "mix" {
            config.codec = nil
        } else {
            guard let known = CallerCodec(rawValue: codec) else { Arguments.fail("unknown codec \(codec)") }
            config.codec = known
        }
        let content = arguments.string("content", default: "tone")!
        guard let known = CallerContent(rawValue: content) else { Arguments.fail("unknown content \(content)") }
        config.content = known
        config.churnMeanSeconds = arguments.double("churn", default: 0)
        config.callsOut = arguments.string("calls-out")
        config.progressSeconds = arguments.double("progress", default: 0)
        config.dtmfEverySeconds = arguments.double("dtmf-every", default: 0)
        config.graceSeconds = arguments.double("grace", default: config.graceSeconds)
        config.expectEcho = !arguments.flag("no-echo")
        config.wavIn = arguments.string("wav")
        config.recordOut = arguments.string("record")
        config.onsetsOut = arguments.string("onsets-out")
        if let text = arguments.string("line-echo-db") {
            guard let erl = Float(text), erl >= 0, erl <= 60 else { Arguments.fail("--line-echo-db wants 0...60 (dB)") }
            config.lineEchoDecibels = erl
        }
        let echoMilliseconds = arguments.int("line-echo-ms", default: 60)
        guard echoMilliseconds >= 0, echoMilliseconds <= 300, echoMilliseconds % 20 == 0 else {
            Arguments.fail("--line-echo-ms wants 0...300 in steps of 20")
        }
        config.lineEchoFrames = echoMilliseconds / 20
        arguments.rejectUnknown()
        guard config.calls >= 1, config.rampPerSecond > 0, config.durationSeconds > 0 else {
            Arguments.fail("--calls, --ramp and --duration must be positive")
        }
        if config.wavIn != nil {
            config.calls = 1
            config.churnMeanSeconds = 0
            guard config.codec == .slin || config.codec == .ulaw || config.codec == .alaw else {
                Arguments.fail("--wav plays 8 kHz: --codec slin, ulaw or alaw")
            }
        }
        guard config.churnMeanSeconds >= 0 else { Arguments.fail("--churn must be positive") }
        if !config.stampsFrames, config.expectEcho {
            // Nothing to match the echo against (and a line echo would feed an echoing STS back).
            Arguments.fail("--content quiet and --line-echo-db send unstamped frames: add --no-echo")
        }
        if config.lineEchoDecibels != nil, config.codec != .slin || config.ingress != .audiosocket {
            Arguments.fail("--line-echo-db needs --codec slin on AudioSocket")
        }
        return config
    }
}

#if canImport(Glibc)
import Glibc
#endif
