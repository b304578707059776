import AVRProtocol

/// Delivers lifecycle events to `WEBHOOK_URL` (SPEC section 6).
///
/// - Events of one call are delivered in the order they happened: the next waits until
///   the previous one succeeded or gave up. Different calls deliver independently.
/// - An attempt fails on timeout, connection error or a non-2xx status; up to `retries`
///   further attempts follow after `backoffBase × 2^(n-1)` ms, capped at `backoffCap`.
/// - Queues are bounded; an overflow is logged, never silent.
/// - Nothing here runs on the audio path's schedule: deliveries are loop callbacks like
///   any other I/O and never block.
public final class WebhookDispatcher {
    public struct Options: Sendable {
        public var timeout: UInt64 = 3_000
        public var retries = 0
        public var secret: String?
        public var backoffBase: UInt64 = 250
        public var backoffCap: UInt64 = 5_000
        public var maxQueuedPerCall = 256
        public var maxQueuedTotal = 100_000
        public init() {}
    }

    private struct Event {
        let type: String
        let body: [UInt8]
        let completion: ((HTTPClientResponse?) -> Void)?
    }

    private final class CallQueue {
        var events: [Event] = []
        var head = 0
        var busy = false
        var pending: Int { events.count - head }
    }

    private let loop: EventLoop
    private let url: EndpointURL
    private let options: Options
    private let client: HTTPClient
    private let log: Logger
    private let wallClock: () -> Int64
    private var queues: [CallUUID: CallQueue] = [:]
    private var queuedTotal = 0
    private var retryTimers: [ObjectIdentifier: Timer] = [:]
    /// Counters for tests and metrics.
    public private(set) var delivered = 0
    public private(set) var failed = 0
    public private(set) var dropped = 0
    /// Attempts, failures and latency by event (set by the service).
    var metrics: WebhookMetrics?

    public init(loop: EventLoop, url: EndpointURL, options: Options, client: HTTPClient, log: Logger,
                wallClock: @escaping () -> Int64) {
        self.loop = loop
        self.url = url
        self.options = options
        self.client = client
        self.log = log
        self.wallClock = wallClock
    }

    /// Events queued or in flight.
    public var backlog: Int { queuedTotal }
    private var abandoned = false

    /// Shutdown after the grace period: pending retries are cancelled, queued events
    /// dropped (counted and logged by the caller); nothing new is sent.
    public func abandon() {
        loop.assertOnLoop()
        abandoned = true
        for timer in retryTimers.values { timer.close() }
        retryTimers = [:]
        dropped += queuedTotal
        queues = [:]
        queuedTotal = 0
    }

    /// Queues `type` for `uuid`, timestamped now. `completion` (if any) gets the successful
    /// response, or nil once every attempt failed or the event was dropped.
    public func send(_ type: String, uuid: CallUUID, payload: JSONValue,
                     completion: ((HTTPClientResponse?) -> Void)? = nil) {
        loop.assertOnLoop()
        guard !abandoned else { return completion?(nil) ?? () }
        let body = WebhookEnvelope.encode(uuid: uuid.description, type: type, timestampMs: wallClock(), payload: payload)
        let queue: CallQueue
        if let existing = queues[uuid] { queue = existing } else {
            queue = CallQueue()
            queues[uuid] = queue
        }
        if queue.pending >= options.maxQueuedPerCall || queuedTotal >= options.maxQueuedTotal {
            dropped += 1
            log.error("Webhook \(type) for \(uuid) dropped: queue full (\(queue.pending) for this call, \(queuedTotal) in all)")
            if queue.pending == 0 { queues[uuid] = nil }
            completion?(nil)
            return
        }
        queue.events.append(Event(type: type, body: body, completion: completion))
        queuedTotal += 1
        if !queue.busy { deliverNext(uuid, queue) }
    }

    private func deliverNext(_ uuid: CallUUID, _ queue: CallQueue) {
        guard queue.head < queue.events.count else {
            queues[uuid] = nil
            return
        }
        queue.busy = true
        attempt(uuid, queue, queue.events[queue.head], number: 1)
    }

    private func attempt(_ uuid: CallUUID, _ queue: CallQueue, _ event: Event, number: Int) {
        var headers: [(name: String, value: String)] = [("Content-Type", "application/json"), ("User-Agent", "avr-core")]
        if let secret = options.secret { headers.append(("X-AVR-WEBHOOK-SECRET", secret)) }
        let request = HTTPClientRequest(method: "POST", host: url.host, port: url.port, hostHeader: url.hostHeader,
                                        target: url.requestTarget, headers: headers, body: event.body,
                                        usesTLS: url.scheme.usesTLS)
        let started = loop.nanoseconds
        client.execute(request, timeout: options.timeout) { [weak self] result in
            guard let self else { return }
            if let metrics = self.metrics {
                let succeeded = if case .success(let response) = result { (200..<300).contains(response.status) } else { false }
                metrics.attempt(event.type, nanoseconds: self.loop.nanoseconds &- started, succeeded: succeeded)
            }
            let failure: String
            switch result {
            case .success(let response) where (200..<300).contains(response.status):
                self.delivered += 1
                if self.abandoned { return event.completion?(response) ?? () }
                return self.completed(uuid, queue, event, response)
            case .success(let response):
                failure = "HTTP \(response.status)"
            case .failure(let error):
                failure = "\(error)"
            }
            if self.abandoned { return event.completion?(nil) ?? () }
            if number <= self.options.retries {
                let delay = min(self.options.backoffCap, self.options.backoffBase << UInt64(number - 1))
                self.log.debug("Webhook \(event.type) for \(uuid) attempt \(number) failed (\(failure)); retrying in \(delay) ms")
                self.retry(after: delay) { self.attempt(uuid, queue, event, number: number + 1) }
            } else {
                self.failed += 1
                self.metrics?.undelivered(event.type)
                self.log.error("Webhook \(event.type) for \(uuid) to \(self.url) failed after \(number) attempt(s): \(failure)")
                self.completed(uuid, queue, event, nil)
            }
        }
    }

    private func retry(after delay: UInt64, _ action: @escaping () -> Void) {
        guard let timer = try? Timer(loop: loop) else { return action() }
        let id = ObjectIdentifier(timer)
        retryTimers[id] = timer
        timer.start(timeout: delay) { [weak self] in
            timer.close()
            self?.retryTimers[id] = nil
            action()
        }
    }

    private func completed(_ uuid: CallUUID, _ queue: CallQueue, _ event: Event, _ response: HTTPClientResponse?) {
        queue.head += 1
        queuedTotal -= 1
        queue.busy = false
        event.completion?(response)
        deliverNext(uuid, queue)
    }
}

extension WebhookDispatcher: CallInitiatedHook {
    /// `call_initiated`, waiting for its answer: a JSON object with a string `sts_url`
    /// holding a usable URL chooses the call's STS base URL.
    public func callInitiated(uuid: CallUUID, payload: JSONObject, completion: @escaping (String?) -> Void) {
        send(WebhookEnvelope.callInitiated, uuid: uuid, payload: .object(payload)) { [log] response in
            guard let response else { return completion(nil) }
            guard !response.body.isEmpty else { return completion(nil) }
            log.info("Webhook response received: \(String(decoding: response.body, as: UTF8.self))")
            guard let value = try? JSONValue.parse(response.body), let text = value["sts_url"]?.stringValue else {
                return completion(nil)
            }
            do {
                _ = try EndpointURL.parse(text)
                completion(text)
            } catch {
                log.warn("Ignoring sts_url from webhook: \(error): \(text)")
                completion(nil)
            }
        }
    }
}
