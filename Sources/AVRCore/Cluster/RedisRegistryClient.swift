import AVRProtocol

/// The Redis half of the shared call registry, on one loop: `SET key value PX ttl` for
/// `POST /call`, `GETDEL key` for the AudioSocket side, each with the `REDIS_TIMEOUT`
/// deadline. Never waits: an operation is refused at once while Redis is not up, and a
/// request that misses its deadline marks the connection stuck (it is closed, every request
/// behind it fails at once, and the callers fall back to the local registry). Reconnection
/// backs off (`RedisAvailability`); loss and recovery are one log line each.
final class RedisRegistryClient {
    enum ClaimOutcome {
        case found(RouteRecord)
        case absent
        /// Redis could not answer (down, slow, error): use the local registry.
        case unavailable
    }

    private let loop: EventLoop
    private let url: RedisURL
    private let keyPrefix: [UInt8]
    private let timeout: UInt64
    private let timeToLive: UInt64
    private let log: Logger
    private var availability = RedisAvailability()
    private var requests = DeadlineQueue()
    private var nextID: UInt64 = 0
    private var connection: RedisConnection?
    private var deadlineTimer: Timer?
    private var retryTimer: Timer?
    private var closed = false
    private var errorReplyLogged = false

    init(loop: EventLoop, url: RedisURL, keyPrefix: String, timeout: UInt64, timeToLive: UInt64, log: Logger) {
        self.loop = loop
        self.url = url
        self.keyPrefix = Array(keyPrefix.utf8)
        self.timeout = timeout
        self.timeToLive = timeToLive
        self.log = log
    }

    var isUp: Bool { availability.usable }

    func start() throws(UVError) {
        let deadlineTimer = try Timer(loop: loop)
        deadlineTimer.unref()
        self.deadlineTimer = deadlineTimer
        let retryTimer = try Timer(loop: loop)
        retryTimer.unref()
        self.retryTimer = retryTimer
        connect()
    }

    /// Stores the route (fire and forget: the caller already keeps it locally).
    func store(_ uuid: CallUUID, record: RouteRecord) {
        guard availability.usable else { return count("set", "unavailable") }
        let ttl = Array(String(timeToLive).utf8)
        request([Array("SET".utf8), key(uuid), record.encoded(), Array("PX".utf8), ttl]) { [weak self] reply in
            guard let self else { return }
            self.count("set", reply)
            switch reply {
            case .status: break
            case .error(let message): self.logErrorReply("SET", message)
            default: break
            }
        }
    }

    /// Takes the route out of Redis in one round trip (`GETDEL`). `completion` runs exactly
    /// once: at once with `.unavailable` while Redis is not up, else within the deadline.
    func claim(_ uuid: CallUUID, completion: @escaping (ClaimOutcome) -> Void) {
        guard availability.usable else {
            count("getdel", "unavailable")
            return completion(.unavailable)
        }
        request([Array("GETDEL".utf8), key(uuid)]) { [weak self] reply in
            self?.count("getdel", reply)
            switch reply {
            case .string(let bytes):
                do throws(RouteRecord.DecodeError) {
                    completion(.found(try RouteRecord.decode(bytes)))
                } catch {
                    self?.log.warn("Redis: the stored route of \(uuid) is unusable (\(error)); using the fallback")
                    completion(.absent)
                }
            case .null:
                completion(.absent)
            case .error(let message):
                self?.logErrorReply("GETDEL", message)
                completion(.unavailable)
            default:
                completion(.unavailable)
            }
        }
    }

    func close() {
        guard !closed else { return }
        closed = true
        let connection = self.connection
        self.connection = nil
        connection?.close()
        requests.removeAll()
        deadlineTimer?.close()
        deadlineTimer = nil
        retryTimer?.close()
        retryTimer = nil
    }

    // MARK: Connection

    private func connect() {
        guard !closed else { return }
        availability.reconnecting()
        DNSResolver.resolve(loop: loop, host: url.host, port: url.port) { [weak self] result in
            guard let self, !self.closed else { return }
            switch result {
            case .failure(let error):
                self.failed("cannot resolve \(self.url.host): \(error)")
            case .success(let addresses):
                self.open(ip: addresses[0].numericHost)
            }
        }
    }

    private func open(ip: String) {
        let connection = RedisConnection(loop: loop)
        if let error = connection.connect(ip: ip, port: url.port) {
            return failed(error)
        }
        self.connection = connection
        connection.onGone = { [weak self, weak connection] reason in
            guard let self, let connection, connection === self.connection else { return }
            self.failed(reason)
        }
        // hiredis queues these until the TCP connection is up; the PING's deadline bounds
        // connect and handshake together.
        if let password = url.password {
            request([Array("AUTH".utf8), Array(password.utf8)]) { [weak self] reply in
                if case .error(let message) = reply { self?.failed("AUTH refused: \(message)") }
            }
        }
        if url.database != 0 {
            request([Array("SELECT".utf8), Array(String(url.database).utf8)]) { [weak self] reply in
                if case .error(let message) = reply { self?.failed("SELECT \(self?.url.database ?? 0) refused: \(message)") }
            }
        }
        request([Array("PING".utf8)], handshake: true) { [weak self] reply in
            guard let self, self.connection === connection else { return }
            guard case .status(let text) = reply, text == "PONG" else {
                if case .error(let message) = reply { return self.failed("PING refused: \(message)") }
                return  // .noReply: the failure that caused it was already handled
            }
            switch self.availability.connected(now: self.loop.milliseconds) {
            case .connected:
                self.log.info("Shared call registry: Redis \(self.url) connected")
            case .recovered(let downFor):
                self.log.info("Shared call registry: Redis \(self.url) is back after \(downFor) ms; claims go through Redis again")
            case .lost:
                break
            }
        }
    }

    /// The connection cannot be used: close it (pending requests fail at once), fall back,
    /// and try again after the backoff.
    private func failed(_ reason: String) {
        guard !closed else { return }
        let connection = self.connection
        self.connection = nil
        requests.removeAll()
        deadlineTimer?.stop()
        connection?.close()
        let now = loop.milliseconds
        let (report, retryAt) = availability.failed(now: now)
        if report == .lost {
            log.warn("Shared call registry: Redis \(url) unavailable (\(reason)); calls use this instance's "
                + "registry until it is back (reconnecting with backoff)")
        } else {
            log.debug("Redis \(url) still unavailable: \(reason)")
        }
        retryTimer?.start(timeout: retryAt > now ? retryAt - now : 0) { [weak self] in self?.connect() }
    }

    // MARK: Requests with deadlines

    private func request(_ arguments: [[UInt8]], handshake: Bool = false, completion: @escaping (RedisConnection.Reply) -> Void) {
        guard let connection, handshake || availability.usable || availability.state == .connecting else {
            return completion(.noReply)
        }
        nextID &+= 1
        let id = nextID
        let wasEmpty = requests.isEmpty
        requests.push(id: id, deadline: loop.milliseconds + timeout)
        if wasEmpty { armDeadline() }
        connection.send(arguments) { [weak self] reply in
            if let self, self.requests.remove(id: id) {
                self.armDeadline()
            }
            completion(reply)
        }
    }

    private func armDeadline() {
        guard let first = requests.firstDeadline else {
            deadlineTimer?.stop()
            return
        }
        let now = loop.milliseconds
        deadlineTimer?.start(timeout: first > now ? first - now : 0) { [weak self] in
            guard let self else { return }
            if self.requests.isOverdue(now: self.loop.milliseconds) {
                self.failed("no answer within \(self.timeout) ms (REDIS_TIMEOUT)")
            } else {
                self.armDeadline()
            }
        }
    }

    /// Where operations are counted (`avr_redis_operations_total`), when the server has metrics.
    var metrics: ServerMetrics?

    private func count(_ operation: String, _ result: String) {
        metrics?.redisOperation(operation, result)
    }

    private func count(_ operation: String, _ reply: RedisConnection.Reply) {
        switch reply {
        case .error: count(operation, "error")
        case .noReply: count(operation, "failed")
        default: count(operation, "ok")
        }
    }

    private func key(_ uuid: CallUUID) -> [UInt8] {
        keyPrefix + Array(uuid.description.utf8)
    }

    private func logErrorReply(_ command: String, _ message: String) {
        guard !errorReplyLogged else { return }
        errorReplyLogged = true
        log.error("Redis refused \(command): \(message) (GETDEL needs Redis 6.2 or later); using the local registry")
    }
}

@available(*, unavailable)
extension RedisRegistryClient: Sendable {}
