import AVRBenchSupport
import AVRCore
#if canImport(Glibc)
import Glibc
#endif

// avr-bench-sts: the harness's STS WebSocket server and webhook receiver, in their own
// process so the bench can measure their CPU apart from the callers'.
signal(SIGPIPE, SIG_IGN)
var arguments = Arguments()
if arguments.flag("help") {
    printLine("avr-bench-sts --ws-port 0 --http-port 0 --mode echo|steady|interrupt --interrupt-every 2")
    exit(0)
}
let wsPort = arguments.int("ws-port", default: 0)
let httpPort = arguments.int("http-port", default: 0)
let modeName = arguments.string("mode", default: "echo")!
let interruptEvery = arguments.double("interrupt-every", default: 2)
arguments.rejectUnknown()
guard let mode = STSServer.Mode(rawValue: modeName) else { Arguments.fail("unknown mode \(modeName)") }

do {
    let loop = try EventLoop()
    let sts = try STSServer(loop: loop, port: wsPort, mode: mode, interruptEverySeconds: interruptEvery)
    let webhooks = try WebhookReceiver(loop: loop, port: httpPort)
    webhooks.statsJSON = {
        var events = JSONWriter()
        for (type, count) in webhooks.counts.sorted(by: { $0.key < $1.key }) { events.add(type, count) }
        var json = JSONWriter()
        json.add("webhooks", object: events)
        json.add("webhook_requests", webhooks.requests)
        json.add("webhook_stalls", webhooks.stalls)
        json.add("webhook_held", webhooks.heldCount)
        json.add("webhook_abandoned", webhooks.abandoned)
        let stats = sts.stats
        json.add("sts_connections", stats.connections)
        json.add("sts_open", stats.open)
        json.add("sts_inits", stats.inits)
        json.add("sts_audio_in", stats.audioIn)
        json.add("sts_audio_out", stats.audioOut)
        json.add("sts_interruptions", stats.interruptions)
        json.add("sts_transcripts", stats.transcripts)
        json.add("sts_other_text", stats.dtmf)
        json.add("sts_protocol_errors", stats.protocolErrors)
        return json.result
    }
    var watchers: [SignalWatcher] = []
    for number in [SIGINT, SIGTERM] {
        watchers.append(try SignalWatcher(loop: loop, signal: number) { _ in
            sts.close()
            webhooks.close()
            for watcher in watchers { watcher.close() }
            loop.stop()
        })
    }
    printLine("avr-bench-sts listening ws=\(sts.port) http=\(webhooks.port) mode=\(mode.rawValue)")
    loop.run()
} catch {
    printError("avr-bench-sts: \(error)")
    exit(1)
}
