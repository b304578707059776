import AVRBenchSupport
import AVRCore
#if canImport(Glibc)
import Glibc
#endif

// avr-loadgen: see LoadConfig for the options; one JSON result line on stdout.
signal(SIGPIPE, SIG_IGN)
let config = LoadConfig.parse()
do {
    let loop = try EventLoop()
    let generator = try LoadGenerator(loop: loop, config: config)
    generator.run()
} catch {
    printError("avr-loadgen: \(error)")
    exit(1)
}
