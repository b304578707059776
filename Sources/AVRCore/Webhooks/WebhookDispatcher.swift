import AVRProtocol

/// Delivers lifecycle events to `WEBHOOK_URL` (README "Webhooks").
///
/// - Events of one call are delivered in the order they happened: the next waits until
///   the previous one succeeded or gave up. Different calls deliver independently.
/// - An attempt fails on timeout, connection error or a non-2xx status; up to `retries`
///   further attempts follow after `backoffBase × 2^(n-1)` ms, capped at `backoffCap`.
/// - Queues are bounded; an overflow is logged, never silent. Lifecycle events
///   (`call_initiated`, `call_started`, `call_ended`) have room reserved (`reservedPerCall`
///   places of each call's queue, `reservedTotal` of the whole backlog) and at the bound evict
///   the call's newest waiting per-message event, so a call flooding transcripts still gets
///   its `call_ended` delivered.
/// - With a secret, each attempt carries the static `X-AVR-WEBHOOK-SECRET` header and an
///   `X-AVR-Signature` (`WebhookSignature`) over the body's exact bytes, which are serialised
///   once per event: a retry sends the same bytes, signed again with its own timestamp.
/// - Nothing here runs on the audio path's schedule: deliveries are loop callbacks like
///   any other I/O and never block.
package final class WebhookDispatcher {
    package struct Options: Sendable {
        package var timeout: UInt64 = 3_000
        package var retries = 0
        package var secret: String?
        package var backoffBase: UInt64 = 250
        package var backoffCap: UInt64 = 5_000
        package var maxQueuedPerCall = 256
        package var maxQueuedTotal = 100_000
        package var reservedPerCall = 4
        package var reservedTotal = 1_000
        package init() {}
    }

    private struct Event {
        let type: String
        let body: [UInt8]
        let completion: ((HTTPClientResponse?) -> Void)?
    }

    private typealias Machine = WebhookDeliveryStateMachine<CallUUID, Event>

    private let loop: EventLoop
    private let url: EndpointURL
    private let options: Options
    private let client: HTTPClient
    private let log: Logger
    private let wallClock: () -> Int64
    /// Signs each attempt when a secret is configured (the key is prepared once).
    private let signature: WebhookSignature?
    /// The retry policy and the per-call queues; this class only sends, times and answers.
    private var machine: Machine
    private var retryTimers: [CallUUID: Timer] = [:]
    /// Counters for tests and metrics.
    package private(set) var delivered = 0
    package private(set) var failed = 0
    package private(set) var dropped = 0
    /// Attempts, failures and latency by event (set by the service).
    var metrics: WebhookMetrics?

    package init(loop: EventLoop, url: EndpointURL, options: Options, client: HTTPClient, log: Logger,
                wallClock: @escaping () -> Int64) {
        self.loop = loop
        self.url = url
        self.options = options
        self.client = client
        // Its own budget for the drop lines, which a flood of events could cause one per event.
        self.log = log.withOwnBudget()
        self.wallClock = wallClock
        signature = options.secret.map(WebhookSignature.init(secret:))
        machine = Machine(policy: .init(retries: options.retries, backoffBase: options.backoffBase,
                                        backoffCap: options.backoffCap, maxQueuedPerCall: options.maxQueuedPerCall,
                                        maxQueuedTotal: options.maxQueuedTotal,
                                        reservedPerCall: options.reservedPerCall, reservedTotal: options.reservedTotal))
    }

    /// Events queued or in flight.
    package var backlog: Int { machine.backlog }

    /// Shutdown after the grace period: pending retries are cancelled, queued events
    /// dropped (counted and logged by the caller); nothing new is sent.
    package func abandon() {
        assertOnLoop(loop)
        perform(machine.abandon())
    }

    /// Queues `event` for `uuid`, timestamped now. `completion` (if any) gets the successful
    /// response, or nil once every attempt failed or the event was dropped.
    package func send(_ event: WebhookEvent, uuid: CallUUID, completion: ((HTTPClientResponse?) -> Void)? = nil) {
        send(event.type, uuid: uuid, payload: event.payload, completion: completion)
    }

    /// Queues `type` with `payload` for `uuid`, timestamped now (`send(_ event:...)` is the
    /// usual door: `WebhookEvent` is where payloads are written). The body is serialised
    /// here, once; every attempt sends these bytes.
    package func send(_ type: String, uuid: CallUUID, payload: JSONValue,
                     completion: ((HTTPClientResponse?) -> Void)? = nil) {
        assertOnLoop(loop)
        if machine.isAbandoned { return completion?(nil) ?? () }
        let body = WebhookEnvelope.encode(uuid: uuid.description, type: type, timestampMs: wallClock(), payload: payload)
        perform(machine.enqueue(Event(type: type, body: body, completion: completion), for: uuid,
                                reserved: WebhookEnvelope.isLifecycle(type)))
    }

    /// Why an attempt failed; made text only in the log line.
    enum AttemptFailure: CustomStringConvertible {
        case status(Int)
        case client(HTTPClientError)

        var description: String {
            switch self {
            case .status(let status): "HTTP \(status)"
            case .client(let error): "\(error)"
            }
        }
    }

    /// Does what the machine says; `response` / `failure`: how the attempt that led here ended.
    private func perform(_ actions: [Machine.Action], response: HTTPClientResponse? = nil,
                         failure: AttemptFailure? = nil) {
        for action in actions {
            switch action {
            case .attempt(let uuid, let event, let number):
                attempt(uuid, event, number: number)
            case .scheduleRetry(let uuid, let event, let delay, let number):
                if let failure {
                    log.debug("Webhook \(event.type) for \(uuid) attempt \(number) failed (\(failure)); retrying in \(delay) ms")
                }
                retry(uuid, after: delay)
            case .gaveUp(let uuid, let event, let attempts):
                failed += 1
                metrics?.undelivered(event.type)
                log.error("Webhook \(event.type) for \(uuid) to \(url) failed after \(attempts) attempt(s): "
                    + (failure.map { "\($0)" } ?? "unknown"))
            case .finish(let event, let wasDelivered):
                if wasDelivered { delivered += 1 }
                event.completion?(wasDelivered ? response : nil)
            case .dropped(let uuid, let event, let forCall, let total):
                dropped += 1
                log.limited(.webhookDropped, .error,
                            "Webhook \(event.type) for \(uuid) dropped: queue full (\(forCall) for this call, \(total) in all)")
            case .abandoned(let count):
                dropped += count
                for timer in retryTimers.values { timer.close() }
                retryTimers = [:]
            }
        }
    }

    private func attempt(_ uuid: CallUUID, _ event: Event, number: Int) {
        var headers: [(name: String, value: String)] = [("Content-Type", "application/json"), ("User-Agent", "avr-core")]
        if let secret = options.secret { headers.append(("X-AVR-WEBHOOK-SECRET", secret)) }
        if let signature {
            // Signed at each attempt: a retry after a backoff carries its own, fresh timestamp.
            let now = wallClock()
            let seconds = now >= 0 ? now / 1000 : (now - 999) / 1000
            headers.append((WebhookSignature.headerName, signature.headerValue(body: event.body, unixSeconds: seconds)))
        }
        let request = HTTPClientRequest(method: "POST", host: url.host, port: url.port, hostHeader: url.hostHeader,
                                        target: url.requestTarget, headers: headers, body: event.body,
                                        usesTLS: url.scheme.usesTLS)
        let started = loop.nanoseconds
        client.execute(request, timeout: options.timeout) { [weak self] result in
            guard let self else { return }
            var response: HTTPClientResponse?
            var failure: AttemptFailure?
            switch result {
            case .success(let answer) where (200..<300).contains(answer.status): response = answer
            case .success(let answer): failure = .status(answer.status)
            case .failure(let error): failure = .client(error)
            }
            self.metrics?.attempt(event.type, nanoseconds: self.loop.nanoseconds &- started, succeeded: response != nil)
            let actions = self.machine.attemptFinished(for: uuid, delivered: response != nil, now: self.loop.milliseconds)
            self.perform(actions, response: response, failure: failure)
        }
    }

    private func retry(_ uuid: CallUUID, after delay: UInt64) {
        guard let timer = try? Timer(loop: loop) else {
            return perform(machine.retryDue(for: uuid, now: UInt64.max))
        }
        retryTimers[uuid]?.close()
        retryTimers[uuid] = timer
        timer.start(timeout: delay) { [weak self] in
            timer.close()
            guard let self else { return }
            self.retryTimers[uuid] = nil
            self.perform(self.machine.retryDue(for: uuid, now: self.loop.milliseconds))
        }
    }
}

extension WebhookDispatcher: CallInitiatedHook {
    /// `call_initiated`, waiting for its answer: a JSON object with a string `sts_url`
    /// holding a usable URL chooses the call's STS base URL.
    package func callInitiated(uuid: CallUUID, payload: JSONObject, completion: @escaping (String?) -> Void) {
        send(.callInitiated(payload: payload), uuid: uuid) { [log] response in
            guard let response else { return completion(nil) }
            guard !response.body.isEmpty else { return completion(nil) }
            // The receiver's answer is a detail (and may be `{}` for every call): debug, with the call.
            log.with("uuid", uuid.description)
                .debug("Webhook response received: \(String(decoding: response.body.prefix(1024), as: UTF8.self))")
            guard let value = try? JSONValue.parse(response.body), let text = value["sts_url"]?.stringValue else {
                return completion(nil)
            }
            do {
                _ = try STSEndpointList.parse(text)
                completion(text)
            } catch {
                log.with("uuid", uuid.description).warn("Ignoring sts_url from webhook: \(error): \(text)")
                completion(nil)
            }
        }
    }
}
