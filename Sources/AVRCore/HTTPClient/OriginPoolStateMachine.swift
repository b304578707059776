/// The bookkeeping of the connections to one origin and the requests waiting for one, as
/// events in and actions out, without I/O. Connections are named by number; `OriginPool`
/// owns the real ones.
///
/// A request goes to an idle connection (the most recently idle first, the one least likely
/// to have been closed by the server), else to a new connection while there are fewer than
/// `maxConnections`, else waits (at most `maxWaiting`) in arrival order. A connection that
/// becomes idle takes the oldest waiting request; one that closes makes room for a new one.
struct OriginPoolStateMachine<Request: PooledRequest> {
    typealias ConnectionID = Int

    enum Action {
        case none
        /// Run the request on this idle connection.
        case run(Request, on: ConnectionID)
        /// Open connection `id` and run the request on it.
        case open(Request, id: ConnectionID)
        /// Too many requests waiting: fail this one.
        case reject(Request, limit: Int)
    }

    let maxConnections: Int
    let maxWaiting: Int
    private(set) var open = Set<ConnectionID>()
    private(set) var idle: [ConnectionID] = []
    private var waiting: [Request] = []
    private var waitingHead = 0
    private var nextID = 0

    init(maxConnections: Int, maxWaiting: Int) {
        self.maxConnections = maxConnections
        self.maxWaiting = maxWaiting
    }

    var waitingCount: Int { waiting.count - waitingHead }

    mutating func enqueue(_ request: Request) -> Action {
        if let id = idle.popLast() { return .run(request, on: id) }
        if open.count < maxConnections { return .open(request, id: makeConnection()) }
        if waitingCount >= maxWaiting { return .reject(request, limit: maxWaiting) }
        waiting.append(request)
        return .none
    }

    /// Connection `id` finished an exchange and may carry another.
    mutating func connectionIdle(_ id: ConnectionID) -> Action {
        guard open.contains(id) else { return .none }
        if let next = nextWaiting() { return .run(next, on: id) }
        idle.append(id)
        return .none
    }

    /// Connection `id` is gone: waiting requests get new connections while there is room.
    mutating func connectionClosed(_ id: ConnectionID) -> [Action] {
        guard open.remove(id) != nil else { return [] }
        idle.removeAll { $0 == id }
        var actions: [Action] = []
        while open.count < maxConnections, let next = nextWaiting() {
            actions.append(.open(next, id: makeConnection()))
        }
        return actions
    }

    /// Shutting down: every waiting request, to fail; the connections are the pool's to close.
    mutating func shutdown() -> [Request] {
        let requests = Array(waiting[waitingHead...])
        waiting = []
        waitingHead = 0
        return requests
    }

    private mutating func makeConnection() -> ConnectionID {
        nextID += 1
        open.insert(nextID)
        return nextID
    }

    /// The oldest waiting request not finished meanwhile (timed out while waiting).
    private mutating func nextWaiting() -> Request? {
        while waitingHead < waiting.count {
            let request = waiting[waitingHead]
            waitingHead += 1
            if waitingHead == waiting.count { waiting = []; waitingHead = 0 }
            if !request.isFinished { return request }
        }
        return nil
    }
}
