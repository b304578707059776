/// Every metric avr-core exports: its Prometheus name, help text and (histograms) buckets.
/// One list, read by the factory (HELP lines, buckets) and by the tests and README.
package enum MetricCatalog {
    package enum Kind: String, Sendable { case counter, gauge, histogram }

    package struct Family: Sendable {
        package let name: String
        package let kind: Kind
        package let help: String
        /// Upper bounds in seconds (histograms only; dB for `avr_echo_return_loss_db`).
        package let buckets: [Double]
    }

    /// Latencies of network set-up: 1 ms … 10 s.
    static let setupBuckets: [Double] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
    /// Timing of the 20 ms audio grid: 0.1 ms … 1 s.
    static let pacingBuckets: [Double] = [0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.04, 0.1, 0.25, 1]

    package static let families: [Family] = [
        Family(name: "avr_calls_active", kind: .gauge, help: "Calls in progress (AudioSocket connections that sent their UUID and have not ended).", buckets: []),
        Family(name: "avr_calls_started_total", kind: .counter, help: "Calls started (UUID received).", buckets: []),
        Family(name: "avr_calls_ended_total", kind: .counter, help: "Calls ended, by reason and speech backend.", buckets: []),
        Family(name: "avr_call_duration_seconds", kind: .histogram, help: "Call duration, from the UUID to the end.",
               buckets: [1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600]),
        Family(name: "avr_sts_connect_seconds", kind: .histogram, help: "Speech backend connection set-up, by backend: DNS, TCP connect and WebSocket/HTTP handshake (pipeline: its first ASR stream).", buckets: setupBuckets),
        Family(name: "avr_sts_first_audio_seconds", kind: .histogram, help: "Time from the call's start to the agent's first audio, by speech backend.",
               buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 30]),
        Family(name: "avr_playback_frames_sent_total", kind: .counter, help: "20 ms frames written to Asterisk (agent audio and silence).", buckets: []),
        Family(name: "avr_playback_silence_frames_total", kind: .counter, help: "Frames filled with silence because the playback queue was empty.", buckets: []),
        Family(name: "avr_playback_frames_dropped_total", kind: .counter,
               help: "Playback frames dropped: late (loop stalled, frames skipped), backpressure (Asterisk not reading), queue_limit (beyond PLAYBACK_QUEUE_LIMIT).", buckets: []),
        Family(name: "avr_loop_lateness_seconds", kind: .histogram, help: "How late each pacing tick fired after its 20 ms deadline.", buckets: pacingBuckets),
        Family(name: "avr_caller_frames_received_total", kind: .counter, help: "Audio frames received from Asterisk.", buckets: []),
        Family(name: "avr_caller_jitter_seconds", kind: .histogram, help: "Inter-arrival jitter of caller frames: |gap - previous frame's duration|.", buckets: pacingBuckets),
        Family(name: "avr_codec_detected_total", kind: .counter, help: "Caller codecs detected (a correction counts again).", buckets: []),
        Family(name: "avr_webhook_attempts_total", kind: .counter, help: "Webhook delivery attempts, by event.", buckets: []),
        Family(name: "avr_webhook_failures_total", kind: .counter, help: "Webhook attempts that failed (timeout, connection error, non-2xx), by event.", buckets: []),
        Family(name: "avr_webhook_undelivered_total", kind: .counter, help: "Webhook events given up after every attempt failed, by event.", buckets: []),
        Family(name: "avr_webhook_seconds", kind: .histogram, help: "Webhook attempt latency (request to complete response or failure), by event.", buckets: setupBuckets),
        Family(name: "avr_tls_handshakes_total", kind: .counter,
               help: "TLS handshakes of outbound connections (STS, webhooks), by result: full, resumed (a saved session), failed.", buckets: []),
        Family(name: "avr_redis_operations_total", kind: .counter,
               help: "Shared-registry Redis operations, by op (set, getdel) and result: ok, error (an error reply), failed (no answer in time or connection lost), unavailable (Redis down: the local registry answered).", buckets: []),
        Family(name: "avr_http_requests_total", kind: .counter, help: "HTTP API requests answered, by route and status.", buckets: []),
        Family(name: "avr_audiosocket_unidentified_closed_total", kind: .counter,
               help: "AudioSocket connections closed before they sent their UUID, by reason: uuid_timeout (AUDIOSOCKET_UUID_TIMEOUT passed), waiting_limit (AUDIOSOCKET_MAX_UNIDENTIFIED reached), fd_pressure (accept ran out of file descriptors).", buckets: []),
        Family(name: "avr_build_info", kind: .gauge, help: "Always 1; the version label names the running build (avr-core --version).", buckets: []),
        Family(name: "avr_echo_return_loss_db", kind: .histogram,
               help: "Echo return loss of pipeline calls' lines (dB), measured while the agent spoke and the caller was silent; one sample per call that measured it.",
               buckets: [3, 6, 10, 15, 20, 25, 30, 40, 60]),
        Family(name: "avr_echo_delay_seconds", kind: .histogram, help: "Echo delay of pipeline calls' lines, measured with the return loss (20 ms steps).",
               buckets: [0, 0.02, 0.04, 0.06, 0.1, 0.15, 0.2, 0.3]),
    ]

    package static func family(_ name: String) -> Family? { families.first { $0.name == name } }
}
