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
    /// Calls placed (churn: including replacements).
    var started = 0
    /// Calls the caller ended after its full length (sent its hangup).
    var completed = 0
    /// Calls whose AudioSocket connection the server answered (audio or a hangup).
    var reachedServer = 0
    /// Stamped frames lost: sent by a completed call and never heard back.
    var lost = 0
    /// Stamped frames of calls cut short (server hangup, close) not heard back: not loss.
    var cutFramesUnanswered = 0
    /// Echoes whose audio after the stamp differs from what was sent (decoded, for G.711).
    var corrupted = 0
    /// Frames from the server that were not 8 kHz `0x10`, or other kinds than audio/hangup.
    var wrongKind = 0
    /// Audio frames from the server that were not 320 bytes.
    var oddSize = 0
    /// slin16 callers (no stamp survives resampling): frames sent, non-silent frames heard.
    var unstampedSent = 0
    /// Calls that connected while a fault kept the server from accepting (SIGUSR1/2):
    /// their stamped frames not heard back by hangup, and their timing, kept apart.
    var affectedCalls = 0
    var affectedUnanswered = 0
    var affectedJitter = Histogram()
    var affectedLatency = Histogram()
    var unstampedEchoed = 0
    var intervalSum: UInt64 = 0
    var intervalCount = 0
    /// |interval − 20 ms| at the caller, per received frame after the first few.
    var jitter = Histogram()
    /// send → arrival of the same frame back.
    var latency = Histogram()
    /// How late the harness's own scheduler sent frames (harness health).
    var sendLateness = Histogram()

    func json(config: LoadConfig, elapsedSeconds: Double) -> String {
        var json = JSONWriter()
        json.add("calls", config.calls)
        json.add("ingress", config.ingress.rawValue)
        json.add("duration_s", config.durationSeconds)
        json.add("codec", config.codec?.rawValue ?? "mix")
        json.add("content", config.content.rawValue)
        json.add("churn_mean_s", config.churnMeanSeconds)
        json.add("started", started)
        json.add("completed", completed)
        json.add("reached_server", reachedServer)
        json.add("connected", connected)
        json.add("failed", failed)
        json.add("http_ok", httpOK)
        json.add("http_failed", httpFailed)
        json.add("frames_sent", framesSent)
        json.add("frames_received", framesReceived)
        json.add("echoed", echoed)
        json.add("lost", config.expectEcho && config.wavIn == nil ? lost : -1)  // -1: not measurable
        json.add("cut_frames_unanswered", cutFramesUnanswered)
        json.add("corrupted", corrupted)
        json.add("wrong_kind", wrongKind)
        json.add("odd_size", oddSize)
        json.add("slin16_frames_sent", unstampedSent)
        json.add("slin16_frames_heard", unstampedEchoed)
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
        json.add("fault_affected_calls", affectedCalls)
        json.add("fault_affected_unanswered", affectedUnanswered)
        json.add("fault_affected_jitter", histogramMilliseconds: affectedJitter)
        json.add("fault_affected_latency", histogramMilliseconds: affectedLatency)
        json.add("elapsed_s", elapsedSeconds)
        return json.result
    }
}
