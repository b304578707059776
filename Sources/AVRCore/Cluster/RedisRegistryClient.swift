import AVRProtocol

/// The Redis half of the shared call registry, on one loop: `SET key value PX ttl` for
/// `POST /call` (its answer waits for Redis' reply), `GETDEL key` for the AudioSocket side,
/// each with the `REDIS_TIMEOUT` deadline; the loop never blocks on either. A request that
/// misses its deadline marks the connection stuck (it is closed, every request behind it
/// fails at once, and the callers fall back to the local registry).
///
/// Reconnection: while Redis is down, the first request that needs it starts an attempt at
/// once and queues behind its handshake; requests arriving meanwhile join that attempt (at
/// most one connect in flight, `RedisAvailability.demanded`). Without requests, attempts
/// back off (`RedisAvailability`). A dead Redis thus costs each request at most one
/// deadline, and one that is back is used by the next request. Loss and recovery are one
/// log line each.
final class RedisRegistryClient {
    enum ClaimOutcome {
        case found(RouteRecord)
        case absent
        /// Redis could not answer (down, slow, error; why, for the log): use the local registry.
        case unavailable(String)
    }

    enum StoreOutcome: Equatable {
        /// Redis acknowledged the `SET`: every instance can claim the route.
        case stored
        /// Not stored (the reason, for the log): the route is only where the caller kept it.
        case notStored(String)
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
    /// Server stop: nothing new is sent; the connection closes once the requests in flight
    /// are answered or fail (`finish`).
    private var finishing = false
    private var errorReplyLogged = false
    /// The address the last resolution gave: an attempt a request starts uses it at once
    /// (a literal IP is never resolved at all); the backoff's attempts resolve again.
    private var resolvedIP: String?
    /// Why Redis last could not be used (for the lines of `/call`s it could not store).
    private(set) var lastProblem = "not connected yet"
    /// Actions due later (a claim's second ask), in due order: one timer serves them.
    private var delayed: [(due: UInt64, action: () -> Void)] = []
    private var delayTimer: Timer?

    init(loop: EventLoop, url: RedisURL, keyPrefix: String, timeout: UInt64, timeToLive: UInt64, log: Logger) {
        self.loop = loop
        self.url = url
        self.keyPrefix = Array(keyPrefix.utf8)
        self.timeout = timeout
        self.timeToLive = timeToLive
        self.log = log
    }

    var isUp: Bool { availability.usable }

    /// The URL as logs show it (no password).
    var endpoint: String { url.description }

    func start() throws(UVError) {
        let deadlineTimer = try Timer(loop: loop)
        deadlineTimer.unref()
        self.deadlineTimer = deadlineTimer
        let retryTimer = try Timer(loop: loop)
        retryTimer.unref()
        self.retryTimer = retryTimer
        let delayTimer = try Timer(loop: loop)
        delayTimer.unref()
        self.delayTimer = delayTimer
        // The handshake's deadline counts from now, not from when the loop was created.
        loop.updateTime()
        connect(onDemand: false)
    }

    /// Stores the route. `completion` runs exactly once: `.stored` when Redis acknowledged
    /// the `SET` (within the deadline), else `.notStored` (at once when no connection can be
    /// had, else when the connection fails or the deadline passes).
    func store(_ uuid: CallUUID, record: RouteRecord, completion: @escaping (StoreOutcome) -> Void) {
        guard reachable() else {
            count("set", "unavailable")
            return completion(.notStored(lastProblem))
        }
        let ttl = Array(String(timeToLive).utf8)
        request([Array("SET".utf8), key(uuid), record.encoded(), Array("PX".utf8), ttl]) { [weak self, weak connection] reply in
            self?.count("set", reply)
            switch reply {
            case .status:
                completion(.stored)
            case .error(let message):
                self?.logErrorReply("SET", message)
                completion(.notStored("SET refused: \(message)"))
            case .noReply:
                completion(.notStored(connection?.goneReason ?? self?.lastProblem ?? "shutting down"))
            default:
                completion(.notStored("unexpected reply to SET"))
            }
        }
    }

    /// Takes the route out of Redis in one round trip (`GETDEL`). `completion` runs exactly
    /// once: at once with `.unavailable` when no connection can be had, else within the
    /// deadline.
    func claim(_ uuid: CallUUID, completion: @escaping (ClaimOutcome) -> Void) {
        guard reachable() else {
            count("getdel", "unavailable")
            return completion(.unavailable(lastProblem))
        }
        request([Array("GETDEL".utf8), key(uuid)]) { [weak self, weak connection] reply in
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
                completion(.unavailable("GETDEL refused: \(message)"))
            default:
                completion(.unavailable(connection?.goneReason ?? self?.lastProblem ?? "shutting down"))
            }
        }
    }

    /// Runs `action` on the loop at `due` (loop milliseconds); at once when the client
    /// finishes or closes (the action then finds Redis unreachable).
    func at(_ due: UInt64, _ action: @escaping () -> Void) {
        guard !closed, !finishing else { return action() }
        // The delays are all the same: the new entry almost always goes last.
        var index = delayed.count
        while index > 0 && delayed[index - 1].due > due { index -= 1 }
        delayed.insert((due, action), at: index)
        if index == 0 { armDelayed() }
    }

    private func armDelayed() {
        guard let first = delayed.first else {
            delayTimer?.stop()
            return
        }
        let now = loop.milliseconds
        delayTimer?.start(timeout: first.due > now ? first.due - now : 0) { [weak self] in
            guard let self else { return }
            let now = self.loop.milliseconds
            var due: [() -> Void] = []
            while let first = self.delayed.first, first.due <= now {
                due.append(first.action)
                self.delayed.removeFirst()
            }
            self.armDelayed()
            for action in due { action() }
        }
    }

    private func runDelayedNow() {
        let due = delayed.map(\.action)
        delayed.removeAll()
        delayTimer?.stop()
        for action in due { action() }
    }

    /// Server stop: nothing new goes to Redis; the requests in flight (a `/call` waiting for
    /// its `SET`) get their replies or their deadline, then the connection closes.
    func finish() {
        guard !closed, !finishing else { return }
        finishing = true
        retryTimer?.stop()
        runDelayedNow()
        if requests.isEmpty || connection == nil { close() }
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
        runDelayedNow()
        delayTimer?.close()
        delayTimer = nil
    }

    // MARK: Connection

    /// Whether a request can go to Redis now: it is up, or an attempt is under way that the
    /// request queues behind (hiredis sends it after the handshake; its own deadline bounds
    /// the wait). While Redis is down the request starts that attempt itself.
    private func reachable() -> Bool {
        guard !closed, !finishing else { return false }
        if availability.demanded() {
            retryTimer?.stop()
            connect(onDemand: true)
        }
        return connection != nil && (availability.usable || availability.state == .connecting)
    }

    private func connect(onDemand: Bool) {
        guard !closed, !finishing else { return }
        availability.reconnecting()
        if onDemand, let ip = resolvedIP { return open(ip: ip) }
        DNSResolver.resolve(loop: loop, host: url.host, port: url.port) { [weak self] result in
            guard let self, !self.closed, !self.finishing else { return }
            switch result {
            case .failure(let error):
                self.failed("cannot resolve \(self.url.host): \(error)")
            case .success(let addresses):
                let ip = addresses[0].numericHost
                self.resolvedIP = ip
                self.open(ip: ip)
            }
        }
    }

    private func open(ip: String) {
        lastProblem = "the connection closed before Redis answered"
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
        lastProblem = reason
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
        if finishing { return close() }
        retryTimer?.start(timeout: retryAt > now ? retryAt - now : 0) { [weak self] in self?.connect(onDemand: false) }
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
            if let self, self.finishing, self.requests.isEmpty { self.close() }
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
