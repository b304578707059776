import AVRProtocol
import CoreMetrics
import Prometheus

/// The process's metrics: a swift-prometheus registry fed through swift-metrics handles.
///
/// Call-level events (a call starts or ends, a speech backend connects, a webhook answers) go straight
/// to process-wide handles: they happen a few times per call, and the Prometheus backend's
/// counters are atomics. Per-frame events go through `LoopMetrics`, which one loop owns.
package final class ServerMetrics: @unchecked Sendable {
    // @unchecked: every stored property is immutable and a swift-metrics handle, which the
    // Prometheus backend makes thread-safe (atomics, one lock per histogram).
    package let registry: PrometheusCollectorRegistry
    package let factory: AVRMetricsFactory

    let callsActive: CoreMetrics.Meter
    let callsStarted: CoreMetrics.Counter
    /// By `reason` and `backend` ("<reason> <backend>").
    private let callsEnded: [String: CoreMetrics.Counter]
    let callDuration: CoreMetrics.Timer
    /// By backend: those with a connection to time (`SpeechBackendKind.connectLeg`).
    private let backendConnect: [SpeechBackendKind: CoreMetrics.Timer]
    private let firstAudioTimers: [SpeechBackendKind: CoreMetrics.Timer]
    private let codecDetected: [AudioCodec: CoreMetrics.Counter]
    private let tlsHandshakes: [String: CoreMetrics.Counter]
    private let redisOperations: [String: CoreMetrics.Counter]
    private let unidentifiedClosed: [String: CoreMetrics.Counter]
    private let echoReturnLoss: CoreMetrics.Recorder
    private let echoDelay: CoreMetrics.Timer

    static let tlsResults = ["full", "resumed", "failed"]
    static let redisOperationNames = ["set", "getdel"]
    static let redisResults = ["ok", "error", "failed", "unavailable"]

    /// Reasons a call ends, as the `reason` label says them.
    static let endReasons = ["caller_hangup", "caller_closed", "caller_error", "protocol_error", "sts_closed",
                             "sts_failed", "shutdown"]
    /// The `backend` label's values: every `SpeechBackendKind`, and `none` for a call that
    /// ended before a backend was made.
    static let backendLabels = SpeechBackendKind.allCases.map(\.rawValue) + [SpeechBackendKind.noneLabel]

    package init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        let factory = AVRMetricsFactory(registry: registry)
        self.factory = factory
        callsActive = CoreMetrics.Meter(label: "avr_calls_active", factory: factory)
        callsStarted = CoreMetrics.Counter(label: "avr_calls_started_total", factory: factory)
        var ended: [String: CoreMetrics.Counter] = [:]
        for reason in Self.endReasons {
            for backend in Self.backendLabels {
                ended[reason + " " + backend] = CoreMetrics.Counter(label: "avr_calls_ended_total",
                                                                    dimensions: [("reason", reason), ("backend", backend)],
                                                                    factory: factory)
            }
        }
        callsEnded = ended
        callDuration = CoreMetrics.Timer(label: "avr_call_duration_seconds", factory: factory)
        var connect: [SpeechBackendKind: CoreMetrics.Timer] = [:]
        var first: [SpeechBackendKind: CoreMetrics.Timer] = [:]
        for kind in SpeechBackendKind.allCases {
            let backend = [("backend", kind.rawValue)]
            if kind.connectLeg != nil {
                connect[kind] = CoreMetrics.Timer(label: "avr_sts_connect_seconds", dimensions: backend, factory: factory)
            }
            first[kind] = CoreMetrics.Timer(label: "avr_sts_first_audio_seconds", dimensions: backend, factory: factory)
        }
        backendConnect = connect
        firstAudioTimers = first
        var codecs: [AudioCodec: CoreMetrics.Counter] = [:]
        for codec in AudioCodec.allCases {
            codecs[codec] = CoreMetrics.Counter(label: "avr_codec_detected_total", dimensions: [("codec", codec.description.lowercased())],
                                    factory: factory)
        }
        codecDetected = codecs
        var handshakes: [String: CoreMetrics.Counter] = [:]
        for result in Self.tlsResults {
            handshakes[result] = CoreMetrics.Counter(label: "avr_tls_handshakes_total", dimensions: [("result", result)], factory: factory)
        }
        tlsHandshakes = handshakes
        var operations: [String: CoreMetrics.Counter] = [:]
        for operation in Self.redisOperationNames {
            for result in Self.redisResults {
                operations[operation + " " + result] = CoreMetrics.Counter(
                    label: "avr_redis_operations_total", dimensions: [("op", operation), ("result", result)], factory: factory)
            }
        }
        redisOperations = operations
        var unidentified: [String: CoreMetrics.Counter] = [:]
        for reason in AwaitingUUIDQueue.CloseReason.allCases {
            unidentified[reason.metricLabel] = CoreMetrics.Counter(
                label: "avr_audiosocket_unidentified_closed_total", dimensions: [("reason", reason.metricLabel)], factory: factory)
        }
        unidentifiedClosed = unidentified
        buildInfo = CoreMetrics.Meter(label: "avr_build_info", dimensions: [("version", BuildInfo.version)], factory: factory)
        buildInfo.set(1)
        echoReturnLoss = CoreMetrics.Recorder(label: "avr_echo_return_loss_db", factory: factory)
        echoDelay = CoreMetrics.Timer(label: "avr_echo_delay_seconds", factory: factory)
    }

    /// A pipeline call's line echo as measured at its end (docs/VAD.md, "Echo cancellation").
    func echoMeasured(returnLossDecibels: Double, delayNanoseconds: Int64) {
        echoReturnLoss.record(returnLossDecibels)
        echoDelay.recordNanoseconds(delayNanoseconds)
    }

    /// `avr_build_info{version="..."} 1`: which build a scrape came from (`BuildInfo.version`).
    private let buildInfo: CoreMetrics.Meter

    /// An AudioSocket connection was closed before it sent its UUID.
    func unidentifiedClosed(_ reason: AwaitingUUIDQueue.CloseReason) { unidentifiedClosed[reason.metricLabel]?.increment() }

    /// One outbound TLS handshake ended: `full`, `resumed` or `failed`.
    func tlsHandshake(_ result: String) { tlsHandshakes[result]?.increment() }
    /// One Redis operation of the shared registry ended (`op`: set, getdel).
    func redisOperation(_ operation: String, _ result: String) { redisOperations[operation + " " + result]?.increment() }

    /// A call ended (`backend` nil: before any backend was made).
    func callEnded(reason: String, backend: SpeechBackendKind?) {
        callsEnded[reason + " " + (backend?.rawValue ?? SpeechBackendKind.noneLabel)]?.increment()
    }
    /// A call's backend opened, `nanoseconds` after it started connecting.
    func backendConnected(_ backend: SpeechBackendKind, nanoseconds: UInt64) {
        backendConnect[backend]?.recordNanoseconds(Int64(nanoseconds))
    }
    /// A call's first agent audio came, `nanoseconds` after the call started.
    func firstAudio(_ backend: SpeechBackendKind, nanoseconds: UInt64) {
        firstAudioTimers[backend]?.recordNanoseconds(Int64(nanoseconds))
    }
    func codecDetected(_ codec: AudioCodec) { codecDetected[codec]?.increment() }

    /// The Prometheus text exposition (format 0.0.4) of everything registered, then the
    /// standard `process_*` families read from `/proc` at this moment.
    package func exposition() -> [UInt8] {
        var buffer: [UInt8] = []
        buffer.reserveCapacity(16 * 1024)
        registry.emit(into: &buffer)
        ProcessReader.sample()?.appendExposition(to: &buffer)
        return buffer
    }

    package static let contentType = "text/plain; version=0.0.4; charset=utf-8"
}

/// One loop's share of the per-frame metrics.
///
/// The audio path only bumps plain integers here (no lock, no atomic, no allocation); the
/// loop's `PlaybackScheduler` hands the tallies to this loop's own swift-metrics counters
/// once per tick (every 5 ms while calls play) and when a call ends, so a scrape sees them at
/// most one tick old. The two per-frame histograms (loop lateness, caller jitter) are this
/// loop's own series (`loop` label): their lock is shared with the scrape only, never with
/// another loop.
/// (Public for the micro-benchmark, which measures what this costs per frame.)
package final class LoopMetrics {
    let server: ServerMetrics
    let loopLabel: String

    package var framesSent = 0
    package var silenceFrames = 0
    package var droppedLate = 0
    package var droppedBackpressure = 0
    package var droppedQueueLimit = 0
    package var framesReceived = 0

    private let sentCounter: CoreMetrics.Counter
    private let silenceCounter: CoreMetrics.Counter
    private let lateCounter: CoreMetrics.Counter
    private let backpressureCounter: CoreMetrics.Counter
    private let queueLimitCounter: CoreMetrics.Counter
    private let receivedCounter: CoreMetrics.Counter
    let lateness: CoreMetrics.Timer
    let jitter: CoreMetrics.Timer

    package init(server: ServerMetrics, loopIndex: Int) {
        self.server = server
        loopLabel = String(loopIndex)
        let factory = server.factory
        let loop = [("loop", loopLabel)]
        sentCounter = CoreMetrics.Counter(label: "avr_playback_frames_sent_total", dimensions: loop, factory: factory)
        silenceCounter = CoreMetrics.Counter(label: "avr_playback_silence_frames_total", dimensions: loop, factory: factory)
        lateCounter = CoreMetrics.Counter(label: "avr_playback_frames_dropped_total", dimensions: loop + [("reason", "late")], factory: factory)
        backpressureCounter = CoreMetrics.Counter(label: "avr_playback_frames_dropped_total", dimensions: loop + [("reason", "backpressure")],
                                      factory: factory)
        queueLimitCounter = CoreMetrics.Counter(label: "avr_playback_frames_dropped_total", dimensions: loop + [("reason", "queue_limit")],
                                    factory: factory)
        receivedCounter = CoreMetrics.Counter(label: "avr_caller_frames_received_total", dimensions: loop, factory: factory)
        lateness = CoreMetrics.Timer(label: "avr_loop_lateness_seconds", dimensions: loop, factory: factory)
        jitter = CoreMetrics.Timer(label: "avr_caller_jitter_seconds", dimensions: loop, factory: factory)
    }

    /// One caller frame's inter-arrival jitter (this loop's histogram).
    @inline(__always) package func recordJitter(nanoseconds: UInt64) {
        jitter.recordNanoseconds(Int64(truncatingIfNeeded: nanoseconds))
    }

    /// Moves the tallies into the counters (one atomic add per non-zero tally).
    package func flush() {
        if framesSent != 0 { sentCounter.increment(by: framesSent); framesSent = 0 }
        if silenceFrames != 0 { silenceCounter.increment(by: silenceFrames); silenceFrames = 0 }
        if droppedLate != 0 { lateCounter.increment(by: droppedLate); droppedLate = 0 }
        if droppedBackpressure != 0 { backpressureCounter.increment(by: droppedBackpressure); droppedBackpressure = 0 }
        if droppedQueueLimit != 0 { queueLimitCounter.increment(by: droppedQueueLimit); droppedQueueLimit = 0 }
        if framesReceived != 0 { receivedCounter.increment(by: framesReceived); framesReceived = 0 }
    }
}

/// Webhook attempts, failures and latency by event; one per dispatcher (so per loop).
final class WebhookMetrics {
    private struct Handles {
        let attempts: CoreMetrics.Counter
        let failures: CoreMetrics.Counter
        let undelivered: CoreMetrics.Counter
        let latency: CoreMetrics.Timer
    }

    private let factory: AVRMetricsFactory
    private var byEvent: [String: Handles] = [:]

    init(server: ServerMetrics) { factory = server.factory }

    private func handles(_ event: String) -> Handles {
        if let existing = byEvent[event] { return existing }
        let labels = [("event", event)]
        let created = Handles(
            attempts: CoreMetrics.Counter(label: "avr_webhook_attempts_total", dimensions: labels, factory: factory),
            failures: CoreMetrics.Counter(label: "avr_webhook_failures_total", dimensions: labels, factory: factory),
            undelivered: CoreMetrics.Counter(label: "avr_webhook_undelivered_total", dimensions: labels, factory: factory),
            latency: CoreMetrics.Timer(label: "avr_webhook_seconds", dimensions: labels, factory: factory))
        byEvent[event] = created
        return created
    }

    /// One attempt finished after `nanoseconds`, delivered or not.
    func attempt(_ event: String, nanoseconds: UInt64, succeeded: Bool) {
        let handles = handles(event)
        handles.attempts.increment()
        handles.latency.recordNanoseconds(Int64(nanoseconds))
        if !succeeded { handles.failures.increment() }
    }

    /// Every attempt failed; the event is given up.
    func undelivered(_ event: String) { handles(event).undelivered.increment() }
}

/// HTTP API requests by route and status; one per HTTP service (so per loop).
final class HTTPMetrics {
    private let factory: AVRMetricsFactory
    private var counters: [String: CoreMetrics.Counter] = [:]

    init(server: ServerMetrics) { factory = server.factory }

    /// Known routes keep their path; anything else is `other` (no unbounded label values).
    static func route(_ path: Substring) -> String {
        switch path {
        case "/call", "/health", "/ready", "/metrics": String(path)
        default: "other"
        }
    }

    func request(route: String, status: Int) {
        let key = "\(route) \(status)"
        if let counter = counters[key] { return counter.increment() }
        let counter = CoreMetrics.Counter(label: "avr_http_requests_total", dimensions: [("route", route), ("status", String(status))],
                              factory: factory)
        counters[key] = counter
        counter.increment()
    }
}
