import AVRProtocol

/// STS over streaming HTTP (README "STS protocol"): one chunked `POST` per call whose request
/// body is the caller's live audio and whose response body is the agent's audio, carried by
/// an `HTTPRequestTask`.
///
/// A service that stops reading the request body costs at most the task's pending-bytes
/// bound (`STSSendBudget.defaultMaxPendingBytes`, 256 KiB): past it caller audio is dropped
/// and counted, as on the WebSocket client; when it has taken none of the body for
/// `stallTimeout` (`STS_HTTP_STALL_TIMEOUT`) the call ends. A service that sends no response
/// head within `headTimeout` (`STS_HTTP_HEAD_TIMEOUT`) of the request ends the call too. After
/// the call the connection closes once flushed, or after `TCPStream.flushDeadline` whatever the
/// service does.
final class STSHTTPStreamClient: SpeechBackend {
    struct Timeouts {
        var head: UInt64 = 10_000
        var stall: UInt64 = 10_000
    }

    private enum State { case idle, connecting, open, closed }

    weak var delegate: SpeechBackendDelegate?
    var kind: SpeechBackendKind { .stsHTTP }
    private let url: EndpointURL
    private let uuid: String
    private let log: Logger
    private let connectTimeout: UInt64
    private let tls: TLSClient?
    private let task: HTTPRequestTask
    private var state = State.idle
    private var preOpen = HeldAudio(capacity: 3 * 16_000)

    init(loop: EventLoop, url: EndpointURL, uuid: String, log: Logger, connectTimeout: UInt64, tls: TLSClient? = nil,
         timeouts: Timeouts = Timeouts()) {
        self.tls = tls
        self.url = url
        self.uuid = uuid
        self.log = log
        self.connectTimeout = connectTimeout
        task = HTTPRequestTask(loop: loop, limits: .init(headTimeout: timeouts.head, requestStallTimeout: timeouts.stall,
                                                         maxPendingBytes: STSSendBudget.defaultMaxPendingBytes))
    }

    func start() {
        guard state == .idle else { return }
        state = .connecting
        task.onOpen = { [weak self] in self?.opened() }
        task.onHead = { [weak self] in
            guard let self else { return }
            let status = self.task.parser.status
            if !(200..<300).contains(status) { self.finish(.failed(.httpStatus(self.url, status))) }
        }
        task.onBody = { [weak self] bytes in
            self?.delegate?.speechAgentAudio(pcm: bytes)
            return true
        }
        task.onDrop = { [weak self] count in
            guard let self, STSSendBudget.logsDrop(count) else { return }
            STSSendBudget.logDropped(count, maxPendingBytes: STSSendBudget.defaultMaxPendingBytes, log: self.log)
        }
        task.onEnd = { [weak self] result in
            guard let self else { return }
            switch result {
            case .success: self.finish(.finished)
            case .failure(let failure): self.finish(.failed(self.speechFailure(failure)))
            }
        }
        task.start(host: url.host, port: url.port, tls: tls, usesTLS: url.scheme.usesTLS, timeout: connectTimeout,
                   head: .init(target: url.requestTarget, host: url.hostHeader,
                               headers: [("User-Agent", "avr-core"), ("Content-Type", "audio/l16"), ("X-UUID", uuid)]),
                   body: .streaming)
    }

    private func opened() {
        state = .open
        preOpen.drain { task.send($0) }
        delegate?.speechOpened()
    }

    /// The failure as the call (and the failover backend) sees it: a lost connection stays a
    /// loss; the bounds the task enforces keep its own words.
    private func speechFailure(_ failure: HTTPRequestFailure) -> SpeechFailure {
        switch failure {
        case .tlsUnavailable: .tlsUnavailable(url)
        case .connect(let reason): .unreachable(url, reason)
        case .connection(let reason): .connectionFailed(reason)
        case .invalidResponse(let reason): .invalidResponse(reason)
        case .closedBeforeResponse, .closedMidResponse: .endedMidResponse
        case .headTimeout, .responseIdle, .requestStalled: .httpRequest(url, failure)
        }
    }

    func sendCallerAudio(_ pcm: UnsafeRawBufferPointer) {
        switch state {
        case .open: task.send(pcm)
        case .idle, .connecting: preOpen.append(pcm)
        case .closed: break
        }
    }

    func sendDTMF(_ digit: UInt8) {}

    /// Caller hangup: the request body ends (last chunk), then the connection closes.
    func close() {
        delegate = nil
        if state == .open { task.finishAndClose() }
        finish(.finished)
    }

    private func finish(_ reason: SpeechCloseReason) {
        guard state != .closed else { return }
        state = .closed
        task.cancel()
        let delegate = self.delegate
        self.delegate = nil
        delegate?.speechClosed(reason)
    }
}
