import AVRProtocol

/// What every call on one loop shares: the loop, its scheduler and scratch buffers, the
/// registry, webhooks, configuration and the ambient noise.
final class CallContext {
    let loop: EventLoop
    let configuration: Configuration
    let registry: CallRegistry
    let scheduler: PlaybackScheduler
    let scratch = LoopScratch()
    let webhooks: WebhookDispatcher?
    let ambient: AmbientNoise?
    let log: Logger
    /// For `wss://` and `https://` STS legs.
    let tls: TLSClient?

    init(loop: EventLoop, configuration: Configuration, registry: CallRegistry, webhooks: WebhookDispatcher?,
         ambient: AmbientNoise?, log: Logger, tls: TLSClient? = nil) throws(UVError) {
        self.loop = loop
        self.tls = tls
        self.configuration = configuration
        self.registry = registry
        self.webhooks = webhooks
        self.ambient = ambient
        self.log = log
        scheduler = try PlaybackScheduler(loop: loop, log: log)
    }
}
