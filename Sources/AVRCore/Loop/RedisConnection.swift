internal import CHiredis

/// One hiredis async connection driven by this loop (hiredis's libuv adapter: a `uv_poll_t`
/// on the socket). The thin wrapper: commands in, replies out, in order; no deadlines and
/// no policy here (see `RedisRegistryClient`). Loop thread only.
///
/// hiredis's callbacks carry `self` unretained, so the object keeps itself alive while
/// hiredis holds a context: until the context's disconnect callback (a context that had
/// connected; hiredis defers that free when `close()` runs inside one of its own callbacks),
/// or until `close()` returns (one that had not). Pending commands get `.noReply` before
/// `close()` returns.
final class RedisConnection {
    enum Reply: Equatable {
        case string([UInt8])
        case null
        case integer(Int64)
        case status(String)
        case error(String)
        /// The connection went away before the answer.
        case noReply
        case other
    }

    private let loop: EventLoop
    private var context: UnsafeMutableRawPointer?
    private var nextRequest: UInt = 0
    private var pending: [UInt: (Reply) -> Void] = [:]
    private var connected = false
    /// A connected context we closed: its disconnect callback is still to come.
    private var closedContext: UnsafeMutableRawPointer?
    private var keepAlive: RedisConnection?
    /// The TCP connection is up (commands sent before this are queued by hiredis).
    var onConnected: (() -> Void)?
    /// The connection failed or closed on its own (not after `close()`); pending commands
    /// have had their `.noReply`.
    var onGone: ((String) -> Void)?
    /// Why the connection went away on its own, set before pending commands get their
    /// `.noReply` (so their callbacks can say why).
    private(set) var goneReason: String?

    init(loop: EventLoop) {
        self.loop = loop
        Self.installCallbacks
    }

    var isOpen: Bool { context != nil }

    /// Starts connecting to a numeric address; returns an error text when it cannot start.
    func connect(ip: String, port: Int) -> String? {
        precondition(context == nil)
        var error: UnsafePointer<CChar>?
        let owner = Unmanaged.passUnretained(self).toOpaque()
        guard let created = avr_redis_connect(UnsafeMutableRawPointer(loop.raw), ip, Int32(port), owner, &error) else {
            return error.map { String(cString: $0) } ?? "cannot connect"
        }
        context = created
        connected = false
        keepAlive = self
        return nil
    }

    /// Sends one command; `completion` runs exactly once, on the loop (`.noReply` at once
    /// when there is no connection).
    func send(_ arguments: [[UInt8]], completion: @escaping (Reply) -> Void) {
        guard let context else { return completion(.noReply) }
        nextRequest &+= 1
        let request = nextRequest
        pending[request] = completion
        let status: Int32 = withArgv(arguments) { argv, lengths in
            avr_redis_command(context, Int32(arguments.count), argv, lengths, request)
        }
        if status != 0, let callback = pending.removeValue(forKey: request) {
            callback(.noReply)
        }
    }

    /// Ends the connection now; every pending command gets `.noReply`; `onGone` is not called.
    func close() {
        guard let context else { return }
        self.context = nil
        if connected { closedContext = context }
        avr_redis_close(context)
        if !connected { keepAlive = nil }
        // Whatever hiredis did not call back (it defers the free inside its own callbacks).
        let left = pending
        pending = [:]
        for (_, callback) in left.sorted(by: { $0.key < $1.key }) { callback(.noReply) }
    }

    private func withArgv(_ arguments: [[UInt8]],
                          _ body: (UnsafeMutablePointer<UnsafePointer<CChar>?>, UnsafePointer<Int>) -> Int32) -> Int32 {
        var pointers: [UnsafePointer<CChar>?] = []
        var lengths: [Int] = []
        pointers.reserveCapacity(arguments.count)
        lengths.reserveCapacity(arguments.count)
        // One contiguous copy of all arguments keeps every pointer valid during the call.
        var joined: [UInt8] = []
        for argument in arguments { joined.append(contentsOf: argument); lengths.append(argument.count) }
        if joined.isEmpty { joined.append(0) }
        return joined.withUnsafeBufferPointer { all in
            let base = UnsafeRawPointer(all.baseAddress!).assumingMemoryBound(to: CChar.self)
            var offset = 0
            for length in lengths {
                pointers.append(base + offset)
                offset += length
            }
            return pointers.withUnsafeMutableBufferPointer { argv in
                lengths.withUnsafeBufferPointer { body(argv.baseAddress!, $0.baseAddress!) }
            }
        }
    }

    // MARK: From hiredis

    private func event(context eventContext: UnsafeMutableRawPointer?, connected: Bool, message: String) {
        guard let eventContext else { return }
        if eventContext == closedContext {
            // The disconnect callback of a context we closed: hiredis is done with us.
            closedContext = nil
            keepAlive = nil
            return
        }
        guard eventContext == context else { return }
        if connected {
            self.connected = true
            onConnected?()
            return
        }
        context = nil  // hiredis frees it after this callback
        goneReason = message
        keepAlive = nil  // the caller's reference keeps us alive until this callback returns
        let left = pending
        pending = [:]
        for (_, callback) in left.sorted(by: { $0.key < $1.key }) { callback(.noReply) }
        onGone?(message)
    }

    private func reply(request: UInt, _ reply: Reply) {
        pending.removeValue(forKey: request)?(reply)
    }

    private static let installCallbacks: Void = {
        avr_redis_set_callbacks({ owner, context, event, message in
            let connection = Unmanaged<RedisConnection>.fromOpaque(owner!).takeUnretainedValue()
            connection.event(context: context, connected: event == Int32(AVR_REDIS_CONNECTED),
                             message: message.map { String(cString: $0) } ?? "connection closed")
        }, { owner, request, raw in
            let connection = Unmanaged<RedisConnection>.fromOpaque(owner!).takeUnretainedValue()
            let reply: Reply
            let value = raw!.pointee
            switch Int(value.kind) {
            case Int(AVR_REDIS_STRING):
                reply = .string(value.str == nil ? [] : Array(UnsafeRawBufferPointer(start: value.str, count: value.len)))
            case Int(AVR_REDIS_NIL): reply = .null
            case Int(AVR_REDIS_INTEGER): reply = .integer(Int64(value.integer))
            case Int(AVR_REDIS_STATUS):
                reply = .status(String(decoding: UnsafeRawBufferPointer(start: value.str, count: value.len), as: UTF8.self))
            case Int(AVR_REDIS_ERROR):
                reply = .error(String(decoding: UnsafeRawBufferPointer(start: value.str, count: value.len), as: UTF8.self))
            case Int(AVR_REDIS_NO_REPLY): reply = .noReply
            default: reply = .other
            }
            connection.reply(request: request, reply)
        })
    }()
}

@available(*, unavailable)
extension RedisConnection: Sendable {}
