import AVRBenchSupport
import AVRCore
import AVRProtocol
#if canImport(Glibc)
import Glibc
#endif

// avr-microbench: the per-frame hot path, one case at a time, in ns per frame.
//   avr-microbench [--iterations 200000] [--only NAME]
// For instruction and allocation counts the driver runs one case under valgrind at two
// iteration counts and divides the difference (start-up cost cancels out).
signal(SIGPIPE, SIG_IGN)
var arguments = Arguments()
let iterations = arguments.int("iterations", default: 200_000)
let only = arguments.string("only")
let jsonOutput = arguments.flag("json")
// TLS handshake cost: connections to a TLS server on 127.0.0.1:PORT (plain TCP, full
// handshake, resumed handshake), CPU of this process per connection.
let tlsPort = arguments.int("tls-handshakes", default: 0)
let tlsCA = arguments.string("ca")
let tlsCount = arguments.int("count", default: 200)
// A subset of plain,full,resumed (e.g. only "resumed" when profiling it under callgrind).
let tlsModes = arguments.string("tls-modes") ?? "plain,full,resumed"
// How long each connection stays open (TLS 1.3 tickets arrive after the handshake; longer under valgrind).
let tlsHold = arguments.int("tls-hold-ms", default: 20)
arguments.rejectUnknown()
if tlsPort > 0 {
    printLine(TLSHandshakeBench.run(port: tlsPort, caFile: tlsCA, count: tlsCount, holdMillis: tlsHold,
                                        modes: tlsModes.split(separator: ",").map(String.init)))
    exit(0)
}

/// Keeps results alive so the optimiser cannot drop the work.
nonisolated(unsafe) var sink = 0

let clock = try! EventLoop()
var results = JSONWriter()
let cases = MicroCases.all
for (name, body) in cases where only == nil || only == name {
    if only == nil { _ = body(max(1, iterations / 10)) }  // warm-up
    let start = clock.nanoseconds
    sink &+= body(iterations)
    let elapsed = clock.nanoseconds - start
    let perFrame = Double(elapsed) / Double(iterations)
    results.add(name, perFrame)
    if !jsonOutput {
        let text = String(Int(perFrame * 10)) // one decimal
        let copied = MicroCases.copiedPerFrame[name].map { "   " + String(Int($0.rounded())) + " B copied/frame" } ?? ""
        printLine(name.padding(28) + " " + String(text.dropLast()) + "." + String(text.last!) + " ns/frame" + copied)
    }
}
if jsonOutput { printLine(results.result) }
if sink == 42 { printLine("") }
try? clock.close()

extension String {
    func padding(_ width: Int) -> String { count >= width ? self : self + String(repeating: " ", count: width - count) }
}
