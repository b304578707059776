// One libFuzzer executable for every target. libFuzzer owns `main`; this file only exports
// its two entry points. The target is chosen by the environment variable AVR_FUZZ_TARGET
// (see `FuzzTarget.all` for the names); `make fuzz` sets it for each run.

#if canImport(Glibc)
import Glibc
#endif

/// A fuzz target: a name (also the seed corpus directory) and the function run per input.
struct FuzzTarget: Sendable {
    let name: String
    let run: @Sendable (UnsafeRawBufferPointer) -> Void

    static let all: [FuzzTarget] = [
        FuzzTarget(name: "audiosocket", run: fuzzAudioSocket),
        FuzzTarget(name: "ws-frame", run: fuzzWebSocketFrameDecoder),
        FuzzTarget(name: "ws-message", run: fuzzWebSocketMessageAssembler),
        FuzzTarget(name: "utf8", run: fuzzUTF8Validator),
        FuzzTarget(name: "ws-handshake", run: fuzzWebSocketHandshakeResponse),
        FuzzTarget(name: "http-request", run: fuzzHTTPRequestParser),
        FuzzTarget(name: "http-response", run: fuzzHTTPResponseParser),
        FuzzTarget(name: "http-head-check", run: fuzzHTTPHeadCheck),
        FuzzTarget(name: "json", run: fuzzJSONParser),
        FuzzTarget(name: "sts-inbound", run: fuzzSTSInbound),
        FuzzTarget(name: "url", run: fuzzURL),
    ] + extraTargets
}

nonisolated(unsafe) private var selected: FuzzTarget?

@_cdecl("LLVMFuzzerInitialize")
public func fuzzInitialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    let names = FuzzTarget.all.map(\.name).joined(separator: " ")
    guard let raw = getenv("AVR_FUZZ_TARGET") else {
        writeError("avr-fuzz: set AVR_FUZZ_TARGET to one of: \(names)\n")
        exit(2)
    }
    let name = String(cString: raw)
    guard let target = FuzzTarget.all.first(where: { $0.name == name }) else {
        writeError("avr-fuzz: unknown target '\(name)'; known: \(names)\n")
        exit(2)
    }
    selected = target
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    selected!.run(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

private func writeError(_ text: String) {
    var text = text
    text.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
}
