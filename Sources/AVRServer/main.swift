import AVRCore
import AVRProtocol
#if canImport(Glibc)
import Glibc
#endif

/// Reads the configuration from the environment, starts the service and runs the loop.
/// A configuration error is one line on stderr and exit status 2. `--help`, `--version` and
/// `--check-config` answer and exit; any other argument is an error (status 2).
func runServer() -> Int32 {
    // Before anything else: a SIGHUP during start-up must not end the process either.
    ignoreHangupSignal()
    let action = CommandLineAction.parse(Array(CommandLine.arguments.dropFirst()))
    switch action {
    case .help:
        printStdout(ConfigurationVariables.helpText(program: "avr-core"))
        return 0
    case .version:
        printStdout(BuildInfo.text)
        return 0
    case .invalid(let message):
        printStderr("avr-core: \(message)\n")
        return 2
    case .run, .checkConfig:
        break
    }
    var environment: [String: String] = [:]
    var entry = environ
    while let pointer = entry.pointee {
        let text = String(cString: pointer)
        if let equals = text.firstIndex(of: "=") {
            environment[String(text[..<equals])] = String(text[text.index(after: equals)...])
        }
        entry += 1
    }
    // Start-up errors come before the logger: LOG_FORMAT=json makes them JSON all the same
    // (read here directly, since the configuration itself may be what failed).
    let errorFormat: LogFormat = environment["LOG_FORMAT"]?.lowercased() == "json" ? .json : .text
    let configuration: Configuration
    do {
        configuration = try Configuration.parse(environment: environment) { FileReader.status(path: $0) }
    } catch {
        printStderr(AVRLogHandler.standaloneLine(.error, "\(error)", format: errorFormat))
        return 2
    }
    if action == .checkConfig {
        if let problem = StartupCheck.problem(configuration) {
            printStderr(AVRLogHandler.standaloneLine(.error, problem, format: errorFormat))
            return 2
        }
        printStdout("configuration OK\n")
        return 0
    }
    let log = Logger(level: Logger.Level(configuration.logLevel), format: configuration.logFormat)
    let metrics = Observability.bootstrap(logFormat: configuration.logFormat)
    do {
        return try configuration.loops == 1 ? runSingleLoop(configuration, log, metrics)
            : runLoops(configuration, log, metrics)
    } catch let error as StartError {
        log.error("\(error)")
        return 1
    } catch {
        log.error("Cannot start: \(error)")
        return 1
    }
}

func runSingleLoop(_ configuration: Configuration, _ log: Logger, _ metrics: ServerMetrics) throws -> Int32 {
    let loop = try EventLoop()
    let service = AVRService(loop: loop, configuration: configuration, log: log, metrics: metrics)
    try service.installSignalHandlers()
    try service.start()
    loop.run()
    log.info("AVR server stopped")
    return 0
}

/// One loop per thread, all listening on the same ports (SO_REUSEPORT); each call lives
/// wholly on the loop that accepted it; the call registry is shared. The main thread's loop
/// takes the signals and wakes the others to stop.
func runLoops(_ configuration: Configuration, _ log: Logger, _ metrics: ServerMetrics) throws -> Int32 {
    let registry = CallRegistry(timeToLive: UInt64(configuration.callMetadataTTLSeconds) * 1000,
                                capacity: configuration.maxPendingCalls, byteBudget: configuration.maxPendingCallBytes)
    let wakers = WakerList()
    let lifecycle = ServerLifecycle()
    var threads: [LoopThread] = []
    for index in 1..<configuration.loops {
        let ready = StartGate()
        threads.append(try LoopThread {
            do {
                let loop = try EventLoop()
                let service = AVRService(loop: loop, configuration: configuration, log: log, registry: registry,
                                         lifecycle: lifecycle,
                                         metrics: metrics, loopIndex: index)
                try service.start(reusePort: true, announce: false)
                var wakerRef: LoopWaker?
                // Woken by the main loop: drain, or stop (then the waker closes too).
                let waker = try LoopWaker(loop: loop) {
                    if service.followLifecycle() { wakerRef?.close() }
                }
                wakerRef = waker
                wakers.append(waker)
                ready.open(nil)
                loop.run()
            } catch {
                ready.open(error is StartError ? "\(error)" : "Cannot start: \(error)")
            }
        })
        if let failure = ready.wait() {
            log.error("\(failure) (event loop \(index))")
            return 1
        }
    }
    let loop = try EventLoop()
    let service = AVRService(loop: loop, configuration: configuration, log: log, registry: registry,
                             lifecycle: lifecycle,
                             metrics: metrics, loopIndex: 0)
    try service.start(reusePort: true, announce: true)
    try service.installSignalHandlers(alsoStopping: wakers.all)
    loop.run()
    for thread in threads { thread.join() }
    log.info("AVR server stopped")
    return 0
}

func printStdout(_ text: String) {
    var text = text
    text.withUTF8 { _ = write(1, $0.baseAddress, $0.count) }
}

func printStderr(_ text: String) {
    var text = text
    text.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
}

func printStderr(_ bytes: [UInt8]) {
    bytes.withUnsafeBytes { _ = write(2, $0.baseAddress, $0.count) }
}

exit(runServer())
