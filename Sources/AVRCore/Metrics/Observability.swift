import AVRProtocol
import CoreMetrics
import Logging

/// Process-wide set-up of swift-log and swift-metrics: libraries that log or record through
/// the global systems end up in our handler and our Prometheus registry.
package enum Observability {
    /// Bootstraps both systems once and returns the metrics every loop records into.
    package static func bootstrap(logFormat: LogFormat) -> ServerMetrics {
        let metrics = ServerMetrics()
        LoggingSystem.bootstrap { _ in AVRLogHandler(format: logFormat) }
        MetricsSystem.bootstrap(metrics.factory)
        return metrics
    }
}
