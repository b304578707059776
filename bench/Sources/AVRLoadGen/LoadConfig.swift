import AVRBenchSupport
import AVRProtocol

/// What one run of `avr-loadgen` plays.
struct LoadConfig {
    var host = "127.0.0.1"
    var port = 5001
    /// nil: no `POST /call` (the call arrives with a UUID the server never saw).
    var httpPort: Int?
    var calls = 1
    var durationSeconds = 10.0
    /// Calls started per second.
    var rampPerSecond = 100.0
    var codec = AudioCodec.slin
    /// A DTMF `5` every this many seconds (0: none).
    var dtmfEverySeconds = 0.0
    /// After the last frame is sent, how long to wait for echoes before hanging up.
    var graceSeconds = 0.6
    /// Whether the STS echoes (loss and latency are then meaningful).
    var expectEcho = true
    var wavIn: String?
    var recordOut: String?

    static func parse() -> LoadConfig {
        var arguments = Arguments()
        var config = LoadConfig()
        if arguments.flag("help") {
            printLine("""
            avr-loadgen: N simulated Asterisk calls against avr-core
              --host 127.0.0.1 --port 5001 [--http-port 6001 (POST /call first)]
              --calls N --duration S --ramp CALLS_PER_SECOND --codec slin|ulaw|alaw
              --dtmf-every S --grace S --no-echo (STS does not echo)
              --wav in.wav --record out.wav (one call: play a WAV, record what came back)
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
        config.calls = arguments.int("calls", default: config.calls)
        config.durationSeconds = arguments.double("duration", default: config.durationSeconds)
        config.rampPerSecond = arguments.double("ramp", default: config.rampPerSecond)
        switch arguments.string("codec", default: "slin")! {
        case "slin": config.codec = .slin
        case "ulaw": config.codec = .ulaw
        case "alaw": config.codec = .alaw
        case let other: Arguments.fail("unknown codec \(other)")
        }
        config.dtmfEverySeconds = arguments.double("dtmf-every", default: 0)
        config.graceSeconds = arguments.double("grace", default: config.graceSeconds)
        config.expectEcho = !arguments.flag("no-echo")
        config.wavIn = arguments.string("wav")
        config.recordOut = arguments.string("record")
        arguments.rejectUnknown()
        guard config.calls >= 1, config.rampPerSecond > 0, config.durationSeconds > 0 else {
            Arguments.fail("--calls, --ramp and --duration must be positive")
        }
        if config.wavIn != nil { config.calls = 1 }
        return config
    }
}

#if canImport(Glibc)
import Glibc
#endif
