import AVRProtocol

/// The whole server on one loop: the HTTP service (when `HTTP_PORT` is set), the
/// AudioSocket listener, the call registry and the webhook dispatcher.
public final class AVRService {
    public let loop: EventLoop
    public let configuration: Configuration
    let log: Logger
    public let registry: CallRegistry
    private var httpServer: HTTPServer?
    private var callService: CallHTTPService?
    private(set) var audioSocketServer: AudioSocketServer?
    private var sweeper: Timer?
    private var httpClient: HTTPClient?
    /// Trust store and TLS session cache of this loop (`wss://`, `https://`).
    public private(set) var tls: TLSClient?
    public private(set) var webhooks: WebhookDispatcher?
    private var signals: [SignalWatcher] = []
    private var stopping = false

    public init(loop: EventLoop, configuration: Configuration, log: Logger, registry: CallRegistry? = nil) {
        self.loop = loop
        self.configuration = configuration
        self.log = log
        self.registry = registry ?? CallRegistry(timeToLive: UInt64(configuration.callMetadataTTLSeconds) * 1000,
                                                 capacity: configuration.maxPendingCalls)
    }

    /// Binds the listeners and logs the documented start-up lines.
    /// With `reusePort`, several services (one per loop and thread) share the ports and the
    /// kernel spreads connections over them; only the one with `announce` logs start-up lines
    /// and sweeps the shared registry.
    public func start(host: String = "0.0.0.0", reusePort: Bool = false, announce: Bool = true) throws(UVError) {
        do throws(TLSClient.SetupError) {
            tls = try TLSClient(caFile: configuration.tlsCAFile)
        } catch {
            log.error("TLS: \(error)")
            throw UVError(UV_EINVAL_VALUE)
        }
        if let webhookURL = configuration.webhookURL {
            let client = HTTPClient(loop: loop, tls: tls)
            httpClient = client
            var options = WebhookDispatcher.Options()
            options.timeout = UInt64(configuration.webhookTimeoutMilliseconds)
            options.retries = configuration.webhookRetries
            options.secret = configuration.webhookSecret
            webhooks = WebhookDispatcher(loop: loop, url: webhookURL, options: options, client: client, log: log,
                                         wallClock: WallClock.unixMilliseconds)
        }
        if let httpPort = configuration.httpPort {
            let service = CallHTTPService(registry: registry, stsURL: configuration.stsURL?.description, log: log,
                                          clock: { [loop] in loop.milliseconds })
            service.hook = webhooks
            callService = service
            var options = HTTPServer.Options()
            options.maxBodyBytes = configuration.httpMaxBodyBytes
            options.requestTimeout = UInt64(configuration.httpHeaderTimeoutMilliseconds)
            options.idleTimeout = UInt64(configuration.httpIdleTimeoutMilliseconds)
            httpServer = try HTTPServer(loop: loop, host: host, port: httpPort, options: options, log: log,
                                        reusePort: reusePort) { request, respond in
                service.handle(request, respond: respond)
            }
            if announce { log.info("AVR HTTP Server listening on port \(httpServer!.port)") }
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
                                      ambient: ambient, log: log, tls: tls)
        audioSocketServer = try AudioSocketServer(host: host, port: configuration.audioSocketPort, context: context,
                                                  reusePort: reusePort)
        guard announce else { return }
        log.info("AVR AudioSocket Server listening on port \(audioSocketServer!.port)")
        if configuration.loops > 1 { log.info("Running \(configuration.loops) event loops") }
        if configuration.stsURL == nil {
            log.warn("STS_URL is not set: calls are answered by the built-in echo (callers hear themselves)")
        }
        let sweeper = try Timer(loop: loop)
        sweeper.start(timeout: 1000, repeat: 1000) { [registry, loop] in registry.expire(now: loop.milliseconds) }
        sweeper.unref()
        self.sweeper = sweeper
    }

    /// Stops on SIGINT/SIGTERM: listeners close, calls end (each sends `call_ended`),
    /// pending webhooks get their remaining attempts, then the loop runs out of work.
    public func installSignalHandlers(alsoStopping others: [LoopWaker] = []) throws(UVError) {
        for signal in [SIGINT_VALUE, SIGTERM_VALUE] {
            let watcher = try SignalWatcher(loop: loop, signal: signal) { [unowned self] signum in
                self.log.info("Received signal \(signum), shutting down")
                self.stop()
                for other in others { other.wake() }
            }
            watcher.unref()
            signals.append(watcher)
        }
    }

    public func stop() {
        guard !stopping else { return }
        stopping = true
        // The servers stay referenced until the loop ends: their connections close later.
        httpServer?.close()
        audioSocketServer?.close()
        sweeper?.close()
        sweeper = nil
        for watcher in signals { watcher.close() }
        signals = []
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
