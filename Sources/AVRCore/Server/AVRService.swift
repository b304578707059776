import AVRProtocol

/// The whole server on one loop: the HTTP service (when `HTTP_PORT` is set), the
/// AudioSocket listener, the call registry and the webhook dispatcher.
package final class AVRService {
    package let loop: EventLoop
    package let configuration: Configuration
    let log: Logger
    package let registry: CallRegistry
    private var httpServer: HTTPServer?
    private var metricsServer: HTTPServer?
    package let metrics: ServerMetrics
    let loopMetrics: LoopMetrics
    private var callService: CallHTTPService?
    private(set) var audioSocketServer: AudioSocketServer?
    private var sweeper: Timer?
    private var httpClient: HTTPClient?
    /// Trust store and TLS session cache of this loop (`wss://`, `https://`).
    package private(set) var tls: TLSClient?
    package private(set) var webhooks: WebhookDispatcher?
    private var signals: [SignalWatcher] = []
    /// Shared by the loops of one process (phase, calls alive on every loop).
    package let lifecycle: ServerLifecycle
    /// The phase this loop has carried out (`drain`, `stop`): it follows `lifecycle.phase`,
    /// which the main loop moves first and the other loops catch up with when woken.
    private(set) var phase = ServerLifecycle.Phase.running
    private var drainWatch: Timer?
    private var others: [LoopWaker] = []
    /// `REDIS_URL`: this loop's connection to the shared registry.
    private var shared: RedisRegistryClient?

    /// `metrics` is shared by every loop's service; `loopIndex` labels this loop's series.
    package init(loop: EventLoop, configuration: Configuration, log: Logger, registry: CallRegistry? = nil,
                lifecycle: ServerLifecycle = ServerLifecycle(), metrics: ServerMetrics = ServerMetrics(),
                loopIndex: Int = 0) {
        self.loop = loop
        self.configuration = configuration
        self.log = log.with("loop", String(loopIndex))
        self.lifecycle = lifecycle
        self.metrics = metrics
        loopMetrics = LoopMetrics(server: metrics, loopIndex: loopIndex)
        self.registry = registry ?? CallRegistry(timeToLive: UInt64(configuration.callMetadataTTLSeconds) * 1000,
                                                 capacity: configuration.maxPendingCalls,
                                                 byteBudget: configuration.maxPendingCallBytes)
    }

    /// Binds the listeners and logs the documented start-up lines.
    /// With `reusePort`, several services (one per loop and thread) share the ports and the
    /// kernel spreads connections over them; only the one with `announce` logs start-up lines
    /// and sweeps the shared registry.
    /// `host`: the address to bind, `BIND_ADDRESS` unless given. A failure names what to change
    /// (`StartError`): the listener's variable, port and address when one cannot bind.
    package func start(host: String? = nil, reusePort: Bool = false, announce: Bool = true) throws(StartError) {
        let host = host ?? configuration.bindAddress
        var binding: StartError.Listener?
        do throws(TLSClient.SetupError) {
            tls = try TLSClient(caFile: configuration.tlsCAFile)
            tls?.metrics = metrics
        } catch {
            throw StartError(message: "\(error)", cause: UVError(UV_EINVAL_VALUE))
        }
        do throws(UVError) {
            try startServices(host: host, reusePort: reusePort, announce: announce, binding: &binding)
        } catch {
            throw StartError(listener: binding, cause: error)
        }
    }

    /// `binding` names the listener being bound while it is (nil again once it listens).
    private func startServices(host: String, reusePort: Bool, announce: Bool,
                               binding: inout StartError.Listener?) throws(UVError) {
        if let webhookURL = configuration.webhookURL {
            let client = HTTPClient(loop: loop, tls: tls)
            httpClient = client
            var options = WebhookDispatcher.Options()
            options.timeout = UInt64(configuration.webhookTimeoutMilliseconds)
            options.retries = configuration.webhookRetries
            options.secret = configuration.webhookSecret
            webhooks = WebhookDispatcher(loop: loop, url: webhookURL, options: options, client: client, log: log,
                                         wallClock: WallClock.unixMilliseconds)
            webhooks?.metrics = WebhookMetrics(server: metrics)
        }
        if let redisURL = configuration.redisURL {
            let client = RedisRegistryClient(loop: loop, url: redisURL, keyPrefix: configuration.redisKeyPrefix,
                                             timeout: UInt64(configuration.redisTimeoutMilliseconds),
                                             timeToLive: UInt64(configuration.callMetadataTTLSeconds) * 1000, log: log)
            client.metrics = metrics
            try client.start()
            shared = client
            if announce {
                log.info("Shared call registry: Redis \(redisURL), keys \(configuration.redisKeyPrefix)<uuid>, "
                    + "deadline \(configuration.redisTimeoutMilliseconds) ms")
            }
        }
        if let httpPort = configuration.httpPort {
            let service = CallHTTPService(registry: registry, stsURL: configuration.stsURLText, log: log,
                                          clock: { [loop] in loop.milliseconds })
            service.hook = webhooks
            service.shared = shared
            service.onCallRequest = { [lifecycle] in lifecycle.callRequested(now: MonotonicClock.milliseconds()) }
            service.metrics = (metrics, HTTPMetrics(server: metrics))
            callService = service
            var options = HTTPServer.Options()
            options.maxBodyBytes = configuration.httpMaxBodyBytes
            options.requestTimeout = UInt64(configuration.httpHeaderTimeoutMilliseconds)
            options.firstRequestTimeout = UInt64(configuration.httpHeaderTimeoutMilliseconds)
            options.idleTimeout = UInt64(configuration.httpIdleTimeoutMilliseconds)
            binding = .init(variable: "HTTP_PORT", port: httpPort, address: host)
            httpServer = try HTTPServer(loop: loop, host: host, port: httpPort, options: options, log: log,
                                        reusePort: reusePort) { request, respond in
                service.handle(request, respond: respond)
            }
            binding = nil
            if announce { log.info("AVR HTTP Server listening on port \(httpServer!.port)") }
        }
        if let metricsPort = configuration.metricsPort, announce {
            // One loop serves it: a scrape is one request a few seconds apart.
            var options = HTTPServer.Options()
            options.requestTimeout = UInt64(configuration.httpHeaderTimeoutMilliseconds)
            options.firstRequestTimeout = UInt64(configuration.httpHeaderTimeoutMilliseconds)
            options.idleTimeout = UInt64(configuration.httpIdleTimeoutMilliseconds)
            let http = HTTPMetrics(server: metrics)
            let metricsHost = configuration.metricsBindAddress ?? host
            binding = .init(variable: "METRICS_PORT", port: metricsPort, address: metricsHost)
            metricsServer = try HTTPServer(loop: loop, host: metricsHost, port: metricsPort, options: options, log: log) {
                [metrics] request, respond in
                let route = HTTPMetrics.route(request.path)
                let counted: (HTTPResponse) -> Void = { response in
                    http.request(route: route, status: response.status)
                    respond(response)
                }
                switch request.path {
                case "/metrics": CallHTTPService.serveMetrics(request, metrics, respond: counted)
                case "/health": counted(.json(200, #"{"status":"ok"}"#))
                default: counted(.error(404, "no such endpoint on the metrics port: \(request.path) (try /metrics)"))
                }
            }
            binding = nil
            log.info("AVR metrics on port \(metricsServer!.port) (GET /metrics)"
                + (metricsHost == host ? "" : ", bound to \(metricsHost) (METRICS_BIND_ADDRESS)"))
        }
        var ambient: AmbientNoise?
        if let path = configuration.ambientNoiseFile {
            guard let bytes = FileReader.read(path: path), bytes.count >= 2 else {
                log.error("AMBIENT_NOISE_FILE: cannot read \(path) (or it holds no audio)")
                throw UVError(UV_EINVAL_VALUE)
            }
            ambient = AmbientNoise(pcmLittleEndian: bytes, level: configuration.ambientNoiseLevel)
            if announce { log.info("Ambient noise: \(path), \(bytes.count / 16) ms looped at level \(configuration.ambientNoiseLevel)") }
        }
        let context = try CallContext(loop: loop, configuration: configuration, registry: registry, webhooks: webhooks,
                                      ambient: ambient, log: log, metrics: loopMetrics, shared: shared, tls: tls)
        binding = .init(variable: "PORT", port: configuration.audioSocketPort, address: host)
        audioSocketServer = try AudioSocketServer(host: host, port: configuration.audioSocketPort, context: context,
                                                  reusePort: reusePort, lifecycle: lifecycle)
        binding = nil
        httpServer?.takeover = { [unowned self] request in self.mediaTakeover(request) }
        for server in [httpServer, metricsServer] {
            server?.onAcceptPressure = { [unowned self] error in self.relieveFDPressure(error) }
        }
        audioSocketServer?.onAcceptPressure = { [unowned self] error in self.relieveFDPressure(error) }
        guard announce else { return }
        log.info("AVR AudioSocket Server listening on port \(audioSocketServer!.port)")
        if host != "0.0.0.0" { log.info("Listeners bound to \(host) (BIND_ADDRESS)") }
        if configuration.loops > 1 { log.info("Running \(configuration.loops) event loops") }
        if let pipeline = configuration.pipeline {
            log.info("Pipeline mode: ASR \(pipeline.asr), LLM \(pipeline.llm), TTS \(pipeline.tts)")
        } else if configuration.stsURL == nil {
            log.warn("STS_URL is not set: calls are answered by the built-in echo (callers hear themselves)")
        }
        let sweeper = try Timer(loop: loop)
        sweeper.start(timeout: 1000, repeat: 1000) { [registry, loop] in registry.expire(now: loop.milliseconds) }
        sweeper.unref()
        self.sweeper = sweeper
    }

    /// The WebSocket media endpoint on the HTTP port (`/media`, Asterisk's WebSocket channel):
    /// claims the request's connection, answers the upgrade (or refuses it with a JSON
    /// error) and hands it to the call server as a `WebSocketMediaLeg`.
    private func mediaTakeover(_ request: HTTPRequest) -> HTTPServer.Takeover? {
        guard request.path == "/media" || request.path.hasPrefix("/media/") else { return nil }
        return { [weak self] stream, rest in
            guard let self, let calls = self.audioSocketServer else { return stream.close() }
            let refuse = { (status: Int, message: String) in
                self.log.info("WebSocket media: \(status) to \(stream.peerAddress?.description ?? "?"): \(message)")
                stream.write(HTTPResponse.error(status, message, closesConnection: true).serialized(keepAlive: false))
                stream.closeAfterFlush()
            }
            switch WebSocketServerHandshake.check(method: request.method, header: { request.header($0) }) {
            case .failure(let refusal):
                refuse(refusal.status, refusal.description)
            case .success(let accepted):
                guard calls.isAccepting else { return refuse(503, "draining: new calls are refused") }
                stream.write(WebSocketServerHandshake.response(for: accepted))
                let leg = WebSocketMediaLeg(stream: stream, uriUUID: Self.uuidParameter(request.target), leftover: rest,
                                            pacing: self.configuration.mediaPacing)
                _ = calls.adopt(leg)
            }
        }
    }

    /// The `uuid=` query parameter of a request target, when it is a UUID.
    static func uuidParameter(_ target: String) -> CallUUID? {
        guard let query = target.split(separator: "?", maxSplits: 1).dropFirst().first else { return nil }
        for pair in query.split(separator: "&") where pair.hasPrefix("uuid=") {
            return CallUUID(string: pair.dropFirst(5))
        }
        return nil
    }

    /// A listener of this loop ran out of file descriptors (EMFILE, ENFILE): close what can be
    /// spared, cheapest first, so that calls and `/health` are still accepted. First the
    /// oldest AudioSocket connections that have not sent their UUID (not calls yet), then idle
    /// HTTP connections (`HTTPServer.shedIdleConnections`).
    /// Returns whether anything was closed (the listener then retries its accept at once;
    /// otherwise it pauses and retries with a backoff, connections waiting in the backlog).
    private func relieveFDPressure(_ error: UVError) -> Bool {
        if audioSocketServer?.shedUnidentified(error) == true { return true }
        // Then idle HTTP connections: silent ones first, then keep-alive ones idle longest.
        if httpServer?.shedIdleConnections(error) == true { return true }
        return metricsServer?.shedIdleConnections(error) == true
    }

    /// Signals, on the main loop. SIGTERM drains (see `drain`) when `DRAIN_TIMEOUT` > 0;
    /// a second SIGTERM, or SIGINT, stops at once: listeners close, calls end (each sends
    /// `call_ended`), pending webhooks get their remaining attempts, then the loop runs out
    /// of work. `others` are the other loops' wakers: they read `lifecycle.phase` when woken.
    package func installSignalHandlers(alsoStopping others: [LoopWaker] = []) throws(UVError) {
        self.others = others
        for signal in [SIGINT_VALUE, SIGTERM_VALUE] {
            let watcher = try SignalWatcher(loop: loop, signal: signal) { [unowned self] signum in
                if signum == SIGTERM_VALUE && self.configuration.drainTimeoutSeconds > 0
                    && self.lifecycle.phase == .running {
                    self.beginDrain(signal: signum)
                } else {
                    self.log.info("Received signal \(signum), shutting down")
                    self.stopEverywhere()
                }
            }
            watcher.unref()
            signals.append(watcher)
        }
        // SIGHUP: logged and ignored. The configuration is read once, at start-up; a hangup
        // (a closed terminal, a reload habit) must not end the calls in progress.
        let hangup = try SignalWatcher(loop: loop, signal: SIGHUP_VALUE) { [unowned self] _ in
            self.log.warn("Received SIGHUP: ignored (the configuration is read only at start-up; "
                + "restart to change it; SIGTERM drains, SIGINT stops)")
        }
        hangup.unref()
        signals.append(hangup)
    }

    /// Main loop: every loop stops at once.
    private func stopEverywhere() {
        lifecycle.advance(to: .stopping)
        stop()
        for other in others { other.wake() }
    }

    /// Main loop, first SIGTERM: every loop drains; this loop watches the calls of all of
    /// them, logs progress, and stops everything when none is left or `DRAIN_TIMEOUT` passes.
    private func beginDrain(signal: Int32) {
        guard lifecycle.advance(to: .draining) else { return }
        let timeout = UInt64(configuration.drainTimeoutSeconds) * 1000
        log.info("Received signal \(signal), draining: /ready answers 503, new calls are refused"
            + (configuration.redisURL == nil ? "" : " (POST /call still stores routes in Redis)") + ", "
            + "\(lifecycle.liveCalls) call(s) in progress may go on for up to \(configuration.drainTimeoutSeconds) s "
            + "(DRAIN_TIMEOUT); a second SIGTERM or SIGINT ends them now")
        drain()
        for other in others { other.wake() }
        let deadline = loop.milliseconds + timeout
        var lastLogged = loop.milliseconds
        var lastCount = lifecycle.liveCalls
        guard let watch = try? Timer(loop: loop) else { return stopEverywhere() }
        drainWatch = watch
        // Polled (every loop's calls are counted in one atomic); 100 ms is prompt enough for
        // an exit and costs nothing next to the calls themselves.
        watch.start(timeout: 0, repeat: 100) { [unowned self] in
            let left = self.lifecycle.liveCalls
            let now = self.loop.milliseconds
            if left == 0 && now < deadline && self.configuration.redisURL != nil
                && MonotonicClock.milliseconds() < self.lifecycle.lastCallRequest + Self.drainCallQuiet {
                return  // the balancer still sends /call here: stay until it has taken us out
            }
            if left == 0 {
                self.log.info("Drained: no calls left, stopping")
                return self.stopEverywhere()
            }
            if now >= deadline {
                self.log.warn("DRAIN_TIMEOUT (\(self.configuration.drainTimeoutSeconds) s) passed: ending \(left) call(s)")
                return self.stopEverywhere()
            }
            if left != lastCount && now - lastLogged >= 1000 {
                self.log.info("draining: \(left) calls left")
                lastCount = left
                lastLogged = now
            }
        }
    }

    /// With Redis, a drained instance (no call left) still waits until no `POST /call` has
    /// reached it for this long (ms) before it stops: `/call` is still served while draining,
    /// and a listener closing under the balancer's feet would cut the requests it had already
    /// accepted. A second covers a health check every 500 ms (`deploy/haproxy.cfg`).
    static let drainCallQuiet: UInt64 = 1_000

    /// Any loop: stop accepting AudioSocket connections, fail `/ready`, refuse `/call`
    /// (without Redis); calls in progress go on. The HTTP listener stays open so `/ready`
    /// can say so.
    package func drain() {
        guard phase == .running else { return }
        phase = .draining
        callService?.draining = true
        audioSocketServer?.stopAccepting()
    }

    /// A worker loop was woken: follow the phase the main loop set. Returns true once the
    /// loop is stopping (its waker can close).
    package func followLifecycle() -> Bool {
        switch lifecycle.phase {
        case .running: return false
        case .draining: drain(); return false
        case .stopping: stop(); return true
        }
    }

    package func stop() {
        guard phase != .stopping else { return }
        phase = .stopping
        drainWatch?.close()
        drainWatch = nil
        // The servers stay referenced until the loop ends: their connections close later.
        httpServer?.close()
        metricsServer?.close()
        audioSocketServer?.close()
        sweeper?.close()
        sweeper = nil
        // A `/call` waiting for its `SET` still gets its answer (within REDIS_TIMEOUT).
        shared?.finish()
        for watcher in signals { watcher.close() }
        signals = []
        // Closing the last watcher gave SIGHUP back its default action (ending the process).
        ignoreHangupSignal()
        // The HTTP client closes once the last queued webhook is delivered or given up,
        // or after `shutdownGrace` at most (a dead receiver must not hold the exit).
        closeHTTPClientWhenIdle(deadline: loop.milliseconds + Self.shutdownGrace)
    }

    /// How long a stopping server waits for queued webhooks (ms).
    static let shutdownGrace: UInt64 = 4_000

    private func closeHTTPClientWhenIdle(deadline: UInt64) {
        guard let client = httpClient else { return }
        let backlog = webhooks?.backlog ?? 0
        if backlog == 0 || loop.milliseconds >= deadline {
            if backlog > 0 { log.warn("Shutting down with \(backlog) webhook event(s) undelivered") }
            client.shutdown()
            webhooks?.abandon()
            return
        }
        guard let timer = try? Timer(loop: loop) else { return client.shutdown() }
        timer.start(timeout: 50) { [weak self] in
            timer.close()
            self?.closeHTTPClientWhenIdle(deadline: deadline)
        }
    }
}

@available(*, unavailable)
extension AVRService: Sendable {}
