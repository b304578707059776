import AVRCore
import AVRProtocol
#if canImport(Glibc)
import Glibc
#endif

/// Reads the configuration from the environment, starts the service and runs the loop.
/// A configuration error is one line on stderr and exit status 2.
func runServer() -> Int32 {
    var environment: [String: String] = [:]
    var entry = environ
    while let pointer = entry.pointee {
        let text = String(cString: pointer)
        if let equals = text.firstIndex(of: "=") {
            environment[String(text[..<equals])] = String(text[text.index(after: equals)...])
        }
        entry += 1
    }
    let configuration: Configuration
    do {
        configuration = try Configuration.parse(environment: environment) { access($0, R_OK) == 0 }
    } catch {
        var line = "[ERROR]: \(error)\n"
        line.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
        return 2
    }
    let log = Logger(level: Logger.Level(configuration.logLevel))
    do {
        let loop = try EventLoop()
        let service = AVRService(loop: loop, configuration: configuration, log: log)
        try service.installSignalHandlers()
        try service.start()
        loop.run()
        log.info("AVR server stopped")
        return 0
    } catch {
        log.error("Cannot start: \(error)")
        return 1
    }
}

exit(runServer())
