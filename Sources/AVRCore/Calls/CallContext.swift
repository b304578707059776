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
    /// Claims Redis could not answer: one line per call, within a budget of its own.
    private let claimLog: Logger

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
        claimLog = log.withOwnBudget()
        self.metrics = metrics
        scheduler = try PlaybackScheduler(loop: loop, log: log, metrics: metrics)
    }

    /// Makes a call's speech backend in place of `SpeechBackendFactory` (a test's double);
    /// nil in the server.
    var backendFactory: ((CallRoute?, CallUUID, Logger) -> Result<SpeechBackend, SpeechFailure>)?

    /// The speech backend for a call with this route (nil: none was posted).
    func makeBackend(_ route: CallRoute?, _ uuid: CallUUID, _ log: Logger) -> Result<SpeechBackend, SpeechFailure> {
        if let backendFactory { return backendFactory(route, uuid, log) }
        return SpeechBackendFactory.make(route: route, uuid: uuid, context: self, log: log)
    }

    /// Answers route claims in place of the registries (a test's claim that answers later);
    /// nil in the server.
    var routeLookupOverride: ((CallUUID, @escaping (CallRoute?) -> Void) -> RouteLookup)?

    enum RouteLookup {
        case now(CallRoute?)
        /// The claim is in flight; the completion runs within `REDIS_TIMEOUT`.
        case later
    }

    /// Claims the route `POST /call` stored for `uuid`. Without Redis the answer comes at
    /// once from this process's registry. With Redis, `GETDEL` decides; when Redis has no
    /// entry or cannot answer, the local registry does (a route registered here while Redis
    /// was down). A miss in both asks Redis once more after `REDIS_CLAIM_RETRY_MS` (a `SET`
    /// may still be in flight; `RouteClaim`). Either way the local entry is taken out.
    func lookupRoute(_ uuid: CallUUID, later completion: @escaping (CallRoute?) -> Void) -> RouteLookup {
        if let routeLookupOverride { return routeLookupOverride(uuid, completion) }
        guard let shared else { return .now(registry.claim(uuid)) }
        var synchronous: CallRoute??
        var inCall = true
        let claim = RouteClaim(retryDelay: UInt64(configuration.redisClaimRetryMilliseconds))
        ask(uuid, claim, shared) { route in
            if inCall { synchronous = .some(route) } else { completion(route) }
        }
        inCall = false
        if let synchronous { return .now(synchronous) }
        return .later
    }

    /// One `GETDEL` of the claim, then what `RouteClaim` decides.
    private func ask(_ uuid: CallUUID, _ claim: RouteClaim, _ shared: RedisRegistryClient,
                     deliver: @escaping (CallRoute?) -> Void) {
        // Weak: these closures wait inside `shared` (its connection, its delay queue).
        shared.claim(uuid) { [weak self, weak shared, registry, loop] outcome in
            var claim = claim
            let local = registry.claim(uuid)
            var found: RouteRecord?
            var problem = ""
            let answer: RouteClaim.SharedAnswer
            switch outcome {
            case .found(let record):
                found = record
                answer = .found
            case .absent: answer = .absent
            case .unavailable(let why):
                problem = why
                answer = .unavailable
            }
            switch claim.answered(answer, foundLocally: local != nil, now: loop.milliseconds) {
            case .useShared: deliver(found)
            case .useLocal:
                if answer == .unavailable && local == nil, let self {
                    self.claimLog.limited(.routeNotShared, .warn, "[\(uuid)] Route unknown: Redis \(shared?.endpoint ?? "") "
                        + "could not be asked (\(problem)) and this instance has none")
                }
                deliver(local)
            case .askAgain(let due):
                guard let shared else { return deliver(local) }
                self?.log.debug("[\(uuid)] Route neither in Redis nor here yet: asking Redis again in "
                    + "\(due - loop.milliseconds) ms")
                shared.at(due) { [weak self, weak shared] in
                    guard let self, let shared else { return deliver(nil) }
                    self.ask(uuid, claim, shared, deliver: deliver)
                }
            }
        }
    }
}
