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
    /// The shared registry (`REDIS_URL`), nil without it.
    let shared: RedisRegistryClient?
    let metrics: LoopMetrics
    /// For `wss://` and `https://` STS legs.
    let tls: TLSClient?

    init(loop: EventLoop, configuration: Configuration, registry: CallRegistry, webhooks: WebhookDispatcher?,
         ambient: AmbientNoise?, log: Logger, metrics: LoopMetrics, shared: RedisRegistryClient? = nil,
         tls: TLSClient? = nil) throws(UVError) {
        self.shared = shared
        self.loop = loop
        self.tls = tls
        self.configuration = configuration
        self.registry = registry
        self.webhooks = webhooks
        self.ambient = ambient
        self.log = log
        self.metrics = metrics
        scheduler = try PlaybackScheduler(loop: loop, log: log, metrics: metrics)
    }

    enum RouteLookup {
        case now(CallRoute?)
        /// The claim is in flight; the completion runs within `REDIS_TIMEOUT`.
        case later
    }

    /// Claims the route `POST /call` stored for `uuid`. Without Redis (or while it is down)
    /// the answer comes at once from this process's registry. With Redis, `GETDEL` decides;
    /// when Redis has no entry or cannot answer, the local registry does (a route registered
    /// here while Redis was down). Either way the local entry is taken out.
    func lookupRoute(_ uuid: CallUUID, later completion: @escaping (CallRoute?) -> Void) -> RouteLookup {
        // While Redis is down `claim` answers `.unavailable` at once (and counts it): the
        // local registry decides synchronously.
        guard let shared else { return .now(registry.claim(uuid)) }
        var synchronous: CallRoute??
        var inCall = true
        shared.claim(uuid) { [registry] outcome in
            let local = registry.claim(uuid)
            let route: CallRoute? = switch outcome {
            case .found(let record): record
            case .absent, .unavailable: local
            }
            if inCall { synchronous = .some(route) } else { completion(route) }
        }
        inCall = false
        if let synchronous { return .now(synchronous) }
        return .later
    }
}
