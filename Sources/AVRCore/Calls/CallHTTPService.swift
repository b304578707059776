import AVRProtocol

/// Sends the `call_initiated` webhook and reports the base STS URL its answer chose
/// (nil: no usable `sts_url`, receiver down, timeout...). Implemented by the webhook client.
package protocol CallInitiatedHook: AnyObject {
    func callInitiated(uuid: CallUUID, payload: JSONObject, completion: @escaping (_ overrideBase: String?) -> Void)
}

/// The HTTP API (README "HTTP API"): `GET /health` and `POST /call`.
package final class CallHTTPService {
    private let registry: CallRegistry
    private let stsURL: String?
    private let log: Logger
    /// For the lines of `/call`s whose route Redis could not store: one per call, within a
    /// budget of its own (`LogRateLimiter`), as an outage can cause one per request.
    private let notSharedLog: Logger
    private let clock: () -> UInt64
    package var hook: CallInitiatedHook?
    /// Set on SIGTERM: `/ready` answers 503, so a load balancer moves new calls elsewhere
    /// while the calls in progress finish. `/call` is refused too, except with Redis: a
    /// route stored there is served by whichever instance gets the AudioSocket connection,
    /// so a `/call` that reaches this instance before the balancer has taken it out still
    /// succeeds (503 if Redis cannot store it).
    package var draining = false
    /// Called on every `POST /call` (a draining server waits until they stop coming).
    var onCallRequest: (() -> Void)?
    /// The shared registry (`REDIS_URL`): routes are stored there too.
    var shared: RedisRegistryClient?
    /// `GET /metrics` serves this registry's exposition; requests are counted in it too.
    var metrics: (server: ServerMetrics, http: HTTPMetrics)?

    /// `clock` gives milliseconds on the registry's time base.
    package init(registry: CallRegistry, stsURL: String?, log: Logger, clock: @escaping () -> UInt64) {
        self.registry = registry
        self.stsURL = stsURL
        self.log = log
        notSharedLog = log.withOwnBudget()
        self.clock = clock
    }

    package func handle(_ request: HTTPRequest, respond: @escaping (HTTPResponse) -> Void) {
        guard let metrics else { return route(request, respond: respond) }
        let route = HTTPMetrics.route(request.path)
        self.route(request) { response in
            metrics.http.request(route: route, status: response.status)
            respond(response)
        }
    }

    private func route(_ request: HTTPRequest, respond: @escaping (HTTPResponse) -> Void) {
        switch request.path {
        case "/health":
            guard request.method == "GET" || request.method == "HEAD" else {
                return respond(.error(405, "method \(request.method) not allowed on /health; use GET", headers: [("Allow", "GET, HEAD")]))
            }
            respond(.json(200, #"{"status":"ok"}"#))
        case "/ready":
            guard request.method == "GET" || request.method == "HEAD" else {
                return respond(.error(405, "method \(request.method) not allowed on /ready; use GET", headers: [("Allow", "GET, HEAD")]))
            }
            respond(draining ? .json(503, #"{"status":"draining"}"#) : .json(200, #"{"status":"ready"}"#))
        case "/call":
            guard request.method == "POST" else {
                return respond(.error(405, "method \(request.method) not allowed on /call; use POST", headers: [("Allow", "POST")]))
            }
            onCallRequest?()
            if draining && shared == nil {
                return respond(.error(503, "server is draining (shutting down); send the call to another instance"))
            }
            registerCall(request, respond: respond)
        case "/metrics" where metrics != nil:
            Self.serveMetrics(request, metrics!.server, respond: respond)
        default:
            respond(.error(404, "no such endpoint: \(request.path)"))
        }
    }

    private func registerCall(_ request: HTTPRequest, respond: @escaping (HTTPResponse) -> Void) {
        let uuid: CallUUID
        let payload: JSONObject
        switch Self.parseCallBody(request.body) {
        case .failure(let message):
            log.debug("POST /call rejected: \(message)")
            return respond(.error(400, message))
        case .success(let body):
            (uuid, payload) = body
        }
        let bodyBytes = request.body.count
        if let refusal = registry.room(for: uuid, bytes: bodyBytes) {
            log.warn("POST /call refused for \(uuid): \(refusalReason(refusal))")
            return respond(refusalResponse(refusal))
        }
        guard let hook else {
            return finish(uuid: uuid, payload: payload, bodyBytes: bodyBytes, base: stsURL, overridden: false, respond: respond)
        }
        hook.callInitiated(uuid: uuid, payload: payload) { [weak self] overrideBase in
            guard let self else { return }
            if let overrideBase {
                self.finish(uuid: uuid, payload: payload, bodyBytes: bodyBytes, base: overrideBase, overridden: true, respond: respond)
            } else {
                self.finish(uuid: uuid, payload: payload, bodyBytes: bodyBytes, base: self.stsURL, overridden: false, respond: respond)
            }
        }
    }

    private func refusalReason(_ refusal: CallRegistry.RegisterResult) -> String {
        refusal == .overBudget
            ? "pending calls hold \(registry.bytes) bytes (budget \(registry.byteBudget), MAX_PENDING_CALL_BYTES)"
            : "\(registry.capacity) calls already pending"
    }

    private func refusalResponse(_ refusal: CallRegistry.RegisterResult) -> HTTPResponse {
        refusal == .overBudget
            ? .error(503, "pending calls hold too many bytes (budget \(registry.byteBudget)); retry later")
            : .error(503, "too many pending calls (\(registry.capacity)); retry later")
    }

    /// `bodyBytes`: the request body's size, which with the URL is what the route is counted as
    /// holding against the registry's byte budget.
    /// With Redis the answer waits for its reply to the `SET` (within `REDIS_TIMEOUT`; the
    /// loop goes on meanwhile): a 200 then means any instance can claim the route. When Redis
    /// cannot store it, the route stays on this instance only, which the 200 still stands for
    /// (a call whose AudioSocket connection comes here finds it) and one line says; a
    /// draining instance answers 503 instead (it takes no AudioSocket connection any more).
    private func finish(uuid: CallUUID, payload: JSONObject, bodyBytes: Int, base: String?, overridden: Bool,
                        respond: @escaping (HTTPResponse) -> Void) {
        // Each endpoint of a list gets the payload (a failover keeps the call's query).
        let url = base.map { base in
            STSEndpointList.join(STSEndpointList.split(base).map { EffectiveSTSURL.make(base: $0, payload: payload) })
        }
        if overridden, let url { log.with("uuid", uuid.description).info("Overriding STS URL: \(url)") }
        let route = CallRoute(payload: payload, stsURL: url, overridden: overridden)
        var body = Array(#"{"sts_url":"#.utf8)
        if let url { JSONValue.appendQuoted(url, to: &body) } else { body.append(contentsOf: "null".utf8) }
        body.append(contentsOf: #","override":"#.utf8)
        body.append(contentsOf: (overridden ? "true" : "false").utf8)
        body.append(UInt8(ascii: "}"))
        let answer = HTTPResponse(status: 200, body: body)
        // Kept here too: a call that reaches this instance keeps its route even when Redis is
        // down or slow. Not while draining: no AudioSocket connection will come here.
        if !(draining && shared != nil) {
            let result = registry.register(uuid, route: route, bytes: bodyBytes + (url?.utf8.count ?? 0), now: clock())
            if result == .full || result == .overBudget {
                log.warn("POST /call refused for \(uuid): \(refusalReason(result))")
                return respond(refusalResponse(result))
            }
        }
        guard let shared else {
            log.debug("[\(uuid)] Route registered by POST /call")
            return respond(answer)
        }
        shared.store(uuid, record: route) { [weak self] outcome in
            guard let self else { return respond(.error(503, "server is shutting down")) }
            switch outcome {
            case .stored:
                self.log.debug("[\(uuid)] Route registered by POST /call")
                respond(answer)
            case .notStored(let reason) where self.draining:
                _ = self.registry.claim(uuid)
                self.notSharedLog.limited(.routeNotShared, .warn,
                    "[\(uuid)] POST /call refused while draining: Redis \(shared.endpoint) could not store the route (\(reason))")
                respond(.error(503, "server is draining and the shared registry cannot store the route; send the call to another instance"))
            case .notStored(let reason):
                self.log.debug("[\(uuid)] Route registered by POST /call")
                self.notSharedLog.limited(.routeNotShared, .warn,
                    "[\(uuid)] Route kept on this instance only: Redis \(shared.endpoint) could not store it (\(reason)); "
                    + "the call finds it only if its AudioSocket connection reaches this instance")
                respond(answer)
            }
        }
    }

    /// `GET /metrics`: the Prometheus text exposition.
    static func serveMetrics(_ request: HTTPRequest, _ metrics: ServerMetrics, respond: (HTTPResponse) -> Void) {
        guard request.method == "GET" || request.method == "HEAD" else {
            return respond(.error(405, "method \(request.method) not allowed on /metrics; use GET", headers: [("Allow", "GET, HEAD")]))
        }
        respond(HTTPResponse(status: 200, contentType: ServerMetrics.contentType, body: metrics.exposition()))
    }

    enum BodyResult { case success((CallUUID, JSONObject)), failure(String) }

    /// Validates a `/call` body: a JSON object with a UUID `uuid` and an object `payload`.
    static func parseCallBody(_ body: [UInt8]) -> BodyResult {
        if body.isEmpty { return .failure("request body is empty; expected a JSON object with uuid and payload") }
        let value: JSONValue
        do { value = try JSONValue.parse(body) } catch { return .failure("\(error)") }
        guard let object = value.objectValue else { return .failure("request body must be a JSON object") }
        guard let uuidValue = object["uuid"] else { return .failure("uuid: missing") }
        guard let uuidText = uuidValue.stringValue else { return .failure("uuid: must be a string") }
        guard let uuid = CallUUID(string: uuidText) else {
            return .failure("uuid: \(JSONValue.escapedString(String(uuidText.prefix(64)))) is not a UUID (8-4-4-4-12 hex)")
        }
        guard let payloadValue = object["payload"] else { return .failure("payload: missing") }
        guard let payload = payloadValue.objectValue else { return .failure("payload: must be a JSON object") }
        return .success((uuid, payload))
    }
}
