import AVRCore
#if canImport(Glibc)
import Glibc
#endif

/// CPU time of this process per outbound connection through `Connector`: plain TCP, TLS
/// with a full handshake (saved sessions forgotten before each), TLS resumed. Connections
/// run one after another; each stays open `holdMillis` (20 ms by default: TLS 1.3 tickets arrive after the
/// handshake) and is then closed. Prints one JSON line, microseconds per connection.
enum TLSHandshakeBench {
    static func run(port: Int, caFile: String?, count: Int, holdMillis: Int, modes: [String]) -> String {
        let loop = try! EventLoop()
        let tls = try! TLSClient(caFile: caFile)
        var out: [String] = []
        for mode in modes {
            var done = 0
            var resumed = 0
            var failures = 0
            let before = cpuMicros()
            func next() {
                guard done < count else { return }
                if mode == "full" { tls.forgetSessions() }
                Connector.connect(loop: loop, host: "127.0.0.1", port: port, tls: mode == "plain" ? nil : tls,
                                  timeout: 5000) { result in
                    done += 1
                    switch result {
                    case .failure: failures += 1; next()
                    case .success(let stream):
                        if (stream as? TLSStream)?.resumed == true { resumed += 1 }
                        stream.startReading()
                        let timer = try! Timer(loop: loop)
                        timer.start(timeout: UInt64(holdMillis)) {
                            timer.close()
                            stream.close()
                            next()
                        }
                    }
                }
            }
            // "resumed" starts with the session the last "full" connection saved (or, alone,
            // with a full handshake).
            next()
            loop.run()
            let micros = Double(cpuMicros() - before) / Double(count)
            out.append("\"\(mode)_us\":\(Int(micros)),\"\(mode)_resumed\":\(resumed),\"\(mode)_failed\":\(failures)")
        }
        try? loop.close()
        return "{" + out.joined(separator: ",") + "}"
    }

    static func cpuMicros() -> Int {
        var usage = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
        return Int(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1_000_000 + Int(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec)
    }
}
