import AVRProtocol

/// STS over streaming HTTP (README "STS protocol"): one chunked `POST` per call whose request
/// body is the caller's live audio and whose response body is the agent's audio.
///
/// A service that stops reading the request body costs at most `STSSendBudget`'s bound: past
/// 256 KiB unsent, caller audio is dropped and counted, as on the WebSocket client. After the
/// call the connection closes once flushed, or after `TCPStream.flushDeadline` whatever the
/// service does.
final class STSHTTPStreamClient: SpeechBackend {
    private enum State { case idle, connecting, open, closed }

    weak var delegate: SpeechBackendDelegate?
    private let loop: EventLoop
    private let url: EndpointURL
    private let uuid: String
    private let log: Logger
    private let connectTimeout: UInt64
    private var state = State.idle
    private var stream: ClientStream?
    private let tls: TLSClient?
    private let parser = HTTPResponseParser()
    private var preOpen = HeldAudio(capacity: 3 * 16_000)
    private var chunk: [UInt8] = []
    private var statusChecked = false
    /// Bounds the request body queued when the service stops reading.
    private var budget = STSSendBudget()

    init(loop: EventLoop, url: EndpointURL, uuid: String, log: Logger, connectTimeout: UInt64, tls: TLSClient? = nil) {
        self.loop = loop
        self.tls = tls
        self.url = url
        self.uuid = uuid
        self.log = log
        self.connectTimeout = connectTimeout
    }

    func start() {
        guard state == .idle else { return }
        state = .connecting
        if url.scheme.usesTLS && tls == nil { return finish(.failed(.tlsUnavailable(url))) }
        Connector.connect(loop: loop, host: url.host, port: url.port, tls: url.scheme.usesTLS ? tls : nil,
                          timeout: connectTimeout) { [weak self] result in
            guard let self, self.state == .connecting else {
                if case .success(let stream) = result { stream.close() }
                return
            }
            switch result {
            case .failure(let failure): self.finish(.failed(.unreachable(self.url, failure)))
            case .success(let stream):
                self.stream = stream
                self.opened(stream)
            }
        }
    }

    private func opened(_ stream: ClientStream) {
        state = .open
        parser.onHead = { [weak self] in
            guard let self else { return }
            if !(200..<300).contains(self.parser.status) {
                self.finish(.failed(.httpStatus(self.url, self.parser.status)))
            }
        }
        parser.onBody = { [weak self] bytes in
            guard let self else { return false }
            self.delegate?.speechAgentAudio(pcm: bytes)
            return true
        }
        stream.onRead = { [weak self] bytes in
            guard let self else { return }
            switch self.parser.feed(bytes) {
            case .needMore: break
            case .complete: self.finish(.finished)
            case .failure(let reason): self.finish(.failed(.invalidResponse(reason)))
            }
        }
        stream.onEnd = { [weak self] error in
            guard let self else { return }
            // A truncated TLS stream never completes a close-delimited body.
            if error == nil, case .complete = self.parser.finishAtEOF() { return self.finish(.finished) }
            self.finish(.failed(error.map { .connectionFailed($0) } ?? .endedMidResponse))
        }
        stream.startReading()
        stream.write(HTTPRequestHead.make(method: "POST", target: url.requestTarget, host: url.hostHeader, headers: [
            ("User-Agent", "avr-core"), ("Content-Type", "audio/l16"), ("Transfer-Encoding", "chunked"), ("X-UUID", uuid),
        ]))
        preOpen.drain { sendChunk($0) }
        delegate?.speechOpened()
    }

    func sendCallerAudio(_ pcm: UnsafeRawBufferPointer) {
        switch state {
        case .open: sendChunk(pcm)
        case .idle, .connecting: preOpen.append(pcm)
        case .closed: break
        }
    }

    private func sendChunk(_ pcm: UnsafeRawBufferPointer) {
        guard let stream, pcm.count > 0, budget.admits(stream, log: log) else { return }
        chunk.removeAll(keepingCapacity: true)
        chunk.append(contentsOf: String(pcm.count, radix: 16).utf8)
        chunk.append(contentsOf: [13, 10])
        chunk.append(contentsOf: pcm)
        chunk.append(contentsOf: [13, 10])
        stream.write(chunk)
    }

    func sendDTMF(_ digit: UInt8) {}

    /// Caller hangup: the request body ends (last chunk), then the connection closes.
    func close() {
        delegate = nil
        if state == .open, let stream { stream.write(Array("0\r\n\r\n".utf8)) }
        finish(.finished)
    }

    private func finish(_ reason: SpeechCloseReason) {
        guard state != .closed else { return }
        state = .closed
        if let stream {
            stream.onRead = nil
            stream.onEnd = nil
            stream.closeAfterFlush()
        }
        stream = nil
        parser.onBody = nil
        parser.onHead = nil
        let delegate = self.delegate
        self.delegate = nil
        delegate?.speechClosed(reason)
    }
}
