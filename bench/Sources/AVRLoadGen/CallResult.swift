import AVRBenchSupport

/// What the callers observed, summed over calls.
struct CallResult {
    var connected = 0
    var failed = 0
    var httpOK = 0
    var httpFailed = 0
    var framesSent = 0
    var framesReceived = 0
    var echoed = 0
    var duplicates = 0
    var wrongCall = 0
    var unstamped = 0
    var stalls = 0
    var callsStalled = 0
    var serverHangups = 0
    var closedEarly = 0
    var dtmfSent = 0
    var intervalSum: UInt64 = 0
    var intervalCount = 0
    /// |interval − 20 ms| at the caller, per received frame after the first few.
    var jitter = Histogram()
    /// send → arrival of the same frame back.
    var latency = Histogram()
    /// How late the harness's own scheduler sent frames (harness health).
    var sendLateness = Histogram()

    var lost: Int { framesSent - echoed }

    func json(config: LoadConfig, elapsedSeconds: Double) -> String {
        var json = JSONWriter()
        json.add("calls", config.calls)
        json.add("duration_s", config.durationSeconds)
        json.add("codec", "\(config.codec)")
        json.add("connected", connected)
        json.add("failed", failed)
        json.add("http_ok", httpOK)
        json.add("http_failed", httpFailed)
        json.add("frames_sent", framesSent)
        json.add("frames_received", framesReceived)
        json.add("echoed", echoed)
        json.add("lost", config.expectEcho && config.wavIn == nil ? lost : -1)  // -1: not measurable
        json.add("duplicates", duplicates)
        json.add("wrong_call", wrongCall)
        json.add("unstamped", unstamped)
        json.add("stalls", stalls)
        json.add("calls_stalled", callsStalled)
        json.add("server_hangups", serverHangups)
        json.add("closed_early", closedEarly)
        json.add("dtmf_sent", dtmfSent)
        json.add("interval_mean_ms", intervalCount == 0 ? 0 : Double(intervalSum) / Double(intervalCount) / 1e6)
        json.add("jitter", histogramMilliseconds: jitter)
        json.add("latency", histogramMilliseconds: latency)
        json.add("send_lateness", histogramMilliseconds: sendLateness)
        json.add("elapsed_s", elapsedSeconds)
        return json.result
    }
}
