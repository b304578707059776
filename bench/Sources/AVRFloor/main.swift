import AVRBenchSupport
import AVRCore
#if canImport(Glibc)
import Glibc
#endif

// avr-floor: the bare relay, configured like avr-core (PORT, STS_URL=ws://host:port).
signal(SIGPIPE, SIG_IGN)
let port = Int(String(cString: getenv("PORT") ?? strdup("5001"))) ?? 5001
let stsURL = getenv("STS_URL").map { String(cString: $0) } ?? "ws://127.0.0.1:6030"
var hostPort = stsURL.hasPrefix("ws://") ? String(stsURL.dropFirst(5)) : stsURL
if let slash = hostPort.firstIndex(of: "/") { hostPort = String(hostPort[..<slash]) }
let parts = hostPort.split(separator: ":")
guard parts.count == 2, let stsPort = Int(parts[1]) else { Arguments.fail("STS_URL must be ws://IP:PORT") }
do {
    let loop = try EventLoop()
    let relay = try FloorRelay(loop: loop, port: port, stsHost: String(parts[0]), stsPort: stsPort)
    var watchers: [SignalWatcher] = []
    for number in [SIGINT, SIGTERM] {
        watchers.append(try SignalWatcher(loop: loop, signal: number) { _ in exit(0) })
    }
    printLine("[INFO]: AVR floor relay listening on port \(relay.port)")
    loop.run()
} catch {
    printError("avr-floor: \(error)")
    exit(1)
}
