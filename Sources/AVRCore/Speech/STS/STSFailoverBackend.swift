import AVRProtocol

/// The speech backend of a call with several STS endpoints (`STS_URL` or a webhook's
/// `sts_url` listing more than one): one STS client at a time, replaced by a client for
/// another endpoint when a connection cannot be opened, or is lost mid-call without a close
/// frame. What to try and when to give up is `STSFailoverMachine`'s; this class is its I/O
/// shell: it makes the clients, holds the caller's audio while none is open, and passes on
/// everything else the client says to the call.
///
/// While a replacement connects, the call goes on: the audio already queued for the caller
/// plays out (the call is not told of the loss), the caller's audio is held (3 s, as before a
/// call's first connection opens) and sent in order once the new connection is open; DTMF
/// meanwhile is not held (as before open). A failover is logged once and reported through
/// `onFailover` (the `call_failover` webhook). When nothing is left to try, the call ends
/// with `SpeechFailure.noEndpointLeft`, naming every endpoint tried and why each failed.
final class STSFailoverBackend: SpeechBackend, SpeechBackendDelegate {
    /// A failover that worked: endpoints redacted (`EndpointURL.redacted`), `reason` a label
    /// (`connection_failed`, `closed_without_close_frame`, `ping_timeout`, `ended_mid_response`).
    struct Failover {
        let from: String
        let to: String
        let reason: String
        let gapMilliseconds: UInt64
    }

    weak var delegate: SpeechBackendDelegate?
    /// The transport of the endpoint in use or last tried (endpoints may mix WebSocket and
    /// streaming HTTP).
    private(set) var kind: SpeechBackendKind
    var onFailover: ((Failover) -> Void)?
    private let loop: EventLoop
    private let endpoints: [EndpointURL]
    private let log: Logger
    /// Makes the client of one endpoint, bounded by this connect timeout (ms).
    private let makeClient: (EndpointURL, UInt64) -> SpeechBackend
    private var machine: STSFailoverMachine
    private var client: SpeechBackend?
    /// Caller audio while no connection is open.
    private var held = HeldAudio(capacity: 3 * 16_000)
    /// Ends a start or a failover at its deadline, whatever the attempt in flight does.
    private var timer: Timer?
    /// What failed since the last open connection (the loss first, then each attempt).
    private var failures: [(endpoint: String, failure: SpeechFailure)] = []
    private var lossReason = ""

    init(loop: EventLoop, endpoints: [EndpointURL], settings: STSFailoverMachine.Settings, log: Logger,
         makeClient: @escaping (EndpointURL, UInt64) -> SpeechBackend) {
        self.loop = loop
        self.endpoints = endpoints
        self.log = log
        self.makeClient = makeClient
        kind = SpeechBackendKind(sts: endpoints[0])
        machine = STSFailoverMachine(settings: settings)
    }

    // MARK: From the call

    func start() {
        perform(machine.start(now: loop.milliseconds))
    }

    func sendCallerAudio(_ pcm: UnsafeRawBufferPointer) {
        if case .open = machine.phase, let client { client.sendCallerAudio(pcm) } else { held.append(pcm) }
    }

    func sendDTMF(_ digit: UInt8) {
        if case .open = machine.phase { client?.sendDTMF(digit) }
    }

    func agentFramePlayed(_ samples: UnsafeBufferPointer<Int16>) {
        client?.agentFramePlayed(samples)
    }

    /// The caller hung up: the client closes politely; nothing more is tried.
    func close() {
        delegate = nil
        onFailover = nil
        _ = machine.finished()
        stopTimer()
        let client = self.client
        self.client = nil
        client?.delegate = nil
        client?.close()
    }

    // MARK: Decisions out

    private func perform(_ action: STSFailoverMachine.Action) {
        switch action {
        case .none, .passOn:
            break
        case .connect(let index, let timeout, let deadlineIn):
            armTimer(deadlineIn)
            let url = endpoints[index]
            kind = SpeechBackendKind(sts: url)
            log.debug("STS endpoint \(index + 1)/\(endpoints.count): connecting to \(url.redacted) (\(timeout) ms)")
            let client = makeClient(url, timeout)
            self.client = client
            client.delegate = self
            client.start()
        case .opened(let failover):
            stopTimer()
            failures = []
            if let client {
                var held = self.held
                self.held = HeldAudio(capacity: held.capacity)
                held.drain { client.sendCallerAudio($0) }
                if held.droppedBytes > 0 {
                    log.warn("\(held.droppedBytes) bytes of caller audio dropped while the STS connection was replaced")
                }
            }
            if let failover {
                let event = Failover(from: endpoints[failover.from].redacted, to: endpoints[failover.to].redacted,
                                     reason: lossReason, gapMilliseconds: failover.gapMilliseconds)
                log.warn("STS failover: \(event.from) lost (\(event.reason)); now on \(event.to) after \(event.gapMilliseconds) ms")
                onFailover?(event)
            }
            delegate?.speechOpened()
        case .giveUp:
            stopTimer()
            let client = self.client
            self.client = nil
            client?.delegate = nil
            client?.close()
            let delegate = self.delegate
            self.delegate = nil
            onFailover = nil
            delegate?.speechClosed(.failed(.noEndpointLeft(failures)))
        }
    }

    private func armTimer(_ delay: UInt64) {
        if timer == nil { timer = try? Timer(loop: loop) }
        timer?.start(timeout: delay) { [weak self] in self?.deadlinePassed() }
    }

    private func stopTimer() {
        timer?.close()
        timer = nil
    }

    private func deadlinePassed() {
        let budget = if case .starting = machine.phase { 2 * machine.settings.connectTimeout } else { machine.settings.budget }
        let action = machine.deadlinePassed(now: loop.milliseconds)
        if case .giveUp = action {
            let url = endpoints[machine.current]
            failures.append((url.redacted, .unreachable(url, .timedOut(milliseconds: budget))))
        }
        perform(action)
    }

    /// The label of a loss the machine fails over from; nil for anything else (a close
    /// frame, a protocol violation, a ping flood, the STS's own error): those end the call.
    private static func lossLabel(_ reason: SpeechCloseReason) -> String? {
        switch reason {
        case .endedWithoutCloseFrame: "closed_without_close_frame"
        case .failed(.closedWithoutCloseFrame): "closed_without_close_frame"
        case .failed(.connectionFailed): "connection_failed"
        case .failed(.noPingAnswer): "ping_timeout"
        case .failed(.endedMidResponse): "ended_mid_response"
        default: nil
        }
    }

    // MARK: From the client

    func speechClosed(_ reason: SpeechCloseReason) {
        client = nil
        let url = endpoints[machine.current]
        switch machine.phase {
        case .starting, .reconnecting:
            let failure: SpeechFailure = if case .failed(let failure) = reason { failure } else { .closedWithoutCloseFrame }
            log.debug("STS endpoint \(url.redacted) failed: \(failure)")
            failures.append((url.redacted, failure))
            perform(machine.attemptFailed(now: loop.milliseconds))
        case .open:
            if let label = Self.lossLabel(reason) {
                let action = machine.lost(now: loop.milliseconds)
                if case .passOn = action { return passOn(reason) }
                lossReason = label
                let failure: SpeechFailure = if case .failed(let failure) = reason { failure } else { .closedWithoutCloseFrame }
                failures = [(url.redacted, failure)]
                log.debug("STS connection to \(url.redacted) lost (\(label)); failing over")
                perform(action)
            } else {
                _ = machine.finished()
                passOn(reason)
            }
        case .idle, .ended:
            passOn(reason)
        }
    }

    private func passOn(_ reason: SpeechCloseReason) {
        stopTimer()
        let delegate = self.delegate
        self.delegate = nil
        onFailover = nil
        delegate?.speechClosed(reason)
    }

    func speechOpened() {
        perform(machine.opened(now: loop.milliseconds))
    }

    func speechAgentAudio(pcm: UnsafeRawBufferPointer) {
        delegate?.speechAgentAudio(pcm: pcm)
    }

    func speechAgentAudio(base64: UnsafeRawBufferPointer) throws(Base64Error) {
        try delegate?.speechAgentAudio(base64: base64)
    }

    func speechInterrupted() { delegate?.speechInterrupted() }

    func speechTranscript(role: TranscriptRole, text: String) { delegate?.speechTranscript(role: role, text: text) }

    func speechError(_ error: SpeechFailure) { delegate?.speechError(error) }

    var agentQueuedSamples: Int { delegate?.agentQueuedSamples ?? 0 }
}
