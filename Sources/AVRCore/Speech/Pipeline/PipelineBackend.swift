import AVRProtocol

/// The ASR → LLM → TTS pipeline behind the speech seam (README "Pipeline mode"): one streaming ASR
/// request per call, one LLM request per user turn, one TTS request per sentence
/// (serialised), barge-in by voice activity. The decisions live in the pure
/// `PipelineTurnMachine`; this class does the I/O and feeds it.
///
/// - The ASR stream opens with the call. If the first one cannot be opened at all (connect
///   refused, an error status, closed before answering) the call ends with that failure;
///   a stream that ends later is reopened (backoff 250 ms … 30 s) and the call goes on.
///   Caller audio waiting for the stream is held (3 s, oldest dropped).
/// - Caller frames go to ASR as chunks (none while the agent speaks with
///   `INTERRUPT_LISTENING=true`) and, re-framed to 160 samples, to the `BargeInDetector`
///   (with `false`); played frames go to the detector as its echo reference.
/// - Failures of LLM and TTS requests end only the request (`speechError`).
/// - Preemptive turns: each ASR piece reports the turn's text so far to the machine, which
///   starts the LLM (and the first sentence's TTS) before the debounce has passed. The audio
///   of such a speculative TTS response is held here (whole frames, at most
///   `heldAudioLimitBytes`) until the machine confirms the turn (`releaseHeldAudio`).
final class PipelineBackend: SpeechBackend {
    struct Settings {
        var urls: Configuration.PipelineURLs
        var greeting: String?
        var interruptListening: Bool
        var requestTimeoutMilliseconds: UInt64
        var debounceNanoseconds: UInt64
        var vad: VADConfiguration
        var playbackLimitBytes: Int
        /// `ECHO_CANCELLATION` (applies with `INTERRUPT_LISTENING=false` only).
        var echoCancellation: Bool
        /// `ECHO_CANCELLED_ASR`.
        var echoCancelledASR: Bool

        init(urls: Configuration.PipelineURLs, configuration: Configuration) {
            self.urls = urls
            greeting = configuration.systemMessage
            interruptListening = configuration.interruptListening
            requestTimeoutMilliseconds = UInt64(configuration.pipelineRequestTimeoutMilliseconds)
            debounceNanoseconds = UInt64(configuration.asrDebounceMilliseconds) * 1_000_000
            vad = configuration.vad
            playbackLimitBytes = configuration.playbackQueueLimitMilliseconds * 16
            echoCancellation = configuration.echoCancellation
            echoCancelledASR = configuration.echoCancelledASR
        }
    }

    static let frameSamples = 160
    /// Held TTS audio of a turn not yet confirmed: 10 s of speech (or the playback queue
    /// limit, if smaller). Past it the machine cancels the request and asks again after
    /// confirmation (`PipelineTurnMachine.Event.heldAudioFull`).
    static let heldAudioLimitBytes = 10 * 16_000

    weak var delegate: SpeechBackendDelegate?
    var kind: SpeechBackendKind { .pipeline }
    private let loop: EventLoop
    private let settings: Settings
    private let uuid: String
    private let log: Logger
    private let tls: TLSClient?
    private var machine: PipelineTurnMachine
    private var assembler: ASRTranscriptAssembler
    private var detector: BargeInDetector
    /// The agent's echo removed before the detector (and ASR); nil when not cancelling.
    private let echoCanceller: LineEchoCanceller?
    /// ASR gets the cancelled frames from `detectorFrame` rather than the raw PCM.
    private let asrHearsCancelled: Bool
    private let metrics: ServerMetrics?
    private var closed = false

    private var asr: ModuleRequest?
    /// A 2xx head came on some ASR stream: from then on a lost stream is reopened.
    private var asrAnswered = false
    /// ASR streams lost in a row (reset when one is answered again).
    private var asrRetries = 0
    private var asrRetryTimer: Timer?
    /// A lost ASR stream is reopened after 250 ms, doubling per loss in a row, up to 30 s.
    static let asrReopen = BackoffPolicy(base: 250, factor: 2, cap: 30_000)
    private var held = HeldAudio(capacity: 3 * 16_000)
    private var debounceTimer: Timer?

    private var llm: ModuleRequest?
    private var llmParser = LLMReplyParser()
    private var tts: ModuleRequest?
    private var ttsDecoder = TTSAudioDecoder()
    /// TTS audio goes to playback in whole frames: a slow TTS must not leave half frames
    /// padded with silence in the middle of a word.
    private var ttsFrames = FrameAligner()
    /// The TTS response in flight is speculative: its frames go to `heldTTS`, not playback.
    private var holdingTTS = false
    private var heldTTS: [UInt8] = []
    private let heldTTSLimit: Int
    private var heldTTSOverflow = false
    /// The tentative text last reported to the machine.
    private var reportedTentative: String?

    /// Caller samples re-framed to 160 for the detector; allocated once per call.
    private let frame: UnsafeMutableBufferPointer<Int16>
    private var frameFill = 0
    /// An odd byte of a caller frame, waiting for its pair.
    private var oddByte: UInt8?
    /// What the machine was last told about playback.
    private var playing = false

    init(loop: EventLoop, settings: Settings, uuid: String, log: Logger, tls: TLSClient?, metrics: ServerMetrics? = nil) {
        self.loop = loop
        self.metrics = metrics
        echoCanceller = settings.echoCancellation && !settings.interruptListening ? LineEchoCanceller() : nil
        asrHearsCancelled = echoCanceller != nil && settings.echoCancelledASR
        self.settings = settings
        self.uuid = uuid
        self.log = log
        self.tls = tls
        heldTTSLimit = min(Self.heldAudioLimitBytes, max(FrameAligner.frameBytes, settings.playbackLimitBytes))
        machine = PipelineTurnMachine(uuid: uuid, interruptListening: settings.interruptListening)
        assembler = ASRTranscriptAssembler(debounceNanoseconds: settings.debounceNanoseconds)
        detector = BargeInDetector(configuration: settings.vad)
        frame = .allocate(capacity: Self.frameSamples)
        frame.initialize(repeating: 0)
    }

    deinit { frame.deallocate() }

    // MARK: SpeechBackend

    func start() {
        guard !closed, asr == nil else { return }
        log.info("Pipeline: ASR \(settings.urls.asr), LLM \(settings.urls.llm), TTS \(settings.urls.tts)")
        openASR()
        perform(machine.handle(.started(greeting: settings.greeting), at: loop.nanoseconds))
    }

    func sendCallerAudio(_ pcm: UnsafeRawBufferPointer) {
        guard !closed else { return }
        syncPlaying()
        if !settings.interruptListening { detect(pcm) }
        if settings.interruptListening && machine.agentSpeaking { return }
        if !asrHearsCancelled { toASR(pcm) }
    }

    private func toASR(_ pcm: UnsafeRawBufferPointer) {
        if let asr, asr.isOpen {
            asr.send(pcm)
        } else {
            held.append(pcm)
        }
    }

    func sendDTMF(_ digit: UInt8) {
        guard !closed else { return }
        perform(machine.handle(.dtmf(digit), at: loop.nanoseconds))
    }

    func agentFramePlayed(_ samples: UnsafeBufferPointer<Int16>) {
        guard !closed else { return }
        if !settings.interruptListening {
            detector.agentPlayed(samples)
            echoCanceller?.played(samples)
        }
        syncPlaying()
    }

    func agentLineSilent(samples: Int) {
        guard !closed, !settings.interruptListening else { return }
        echoCanceller?.lineSilent(samples: samples)
    }

    func close() {
        guard !closed else { return }
        closed = true
        delegate = nil
        reportEchoPath()
        asr?.finishAndClose()
        asr = nil
        llm?.cancel()
        llm = nil
        tts?.cancel()
        tts = nil
        debounceTimer?.close()
        debounceTimer = nil
        asrRetryTimer?.close()
        asrRetryTimer = nil
        heldTTS = []
    }

    // MARK: Caller audio → detector

    /// Re-frames caller PCM (frames may be short, e.g. 276 bytes) into 160-sample frames.
    private func detect(_ pcm: UnsafeRawBufferPointer) {
        var index = 0
        if let low = oddByte, pcm.count > 0 {
            frame[frameFill] = Int16(bitPattern: UInt16(low) | UInt16(pcm[0]) << 8)
            oddByte = nil
            index = 1
            frameFill += 1
            if frameFill == Self.frameSamples { detectorFrame() }
        }
        while index + 1 < pcm.count {
            frame[frameFill] = Int16(bitPattern: UInt16(pcm[index]) | UInt16(pcm[index + 1]) << 8)
            index += 2
            frameFill += 1
            if frameFill == Self.frameSamples { detectorFrame() }
        }
        if index < pcm.count { oddByte = pcm[index] }
    }

    private func detectorFrame() {
        frameFill = 0
        var heard = UnsafeBufferPointer(frame)
        if let echoCanceller {
            heard = echoCanceller.process(heard)
            detector.echoSpanFrames = echoCanceller.echoSpanFrames
            detector.echoSpanTrusted = echoCanceller.echoSpanTrusted
            detector.unconvergedLineLoss = echoCanceller.unconvergedLineLoss
        }
        if asrHearsCancelled { toASR(UnsafeRawBufferPointer(heard)) }
        guard let change = detector.callerFrame(heard) else { return }
        syncPlaying()
        switch change {
        case .speechStarted: perform(machine.handle(.bargeIn, at: loop.nanoseconds))
        case .speechEnded:
            perform(machine.handle(.callerSilent, at: loop.nanoseconds))
            armTimer(at: loop.nanoseconds)
        }
    }

    /// The line's echo as measured over the call: one debug line, and the histograms.
    private func reportEchoPath() {
        guard !settings.interruptListening else { return }
        let gate = detector.echoLoss
        let residual = gate.lossDecibels.map { "\(Int($0.rounded())) dB over \(gate.measuredFrames) frames" } ?? "not measured"
        guard let echoCanceller else {
            log.debug("Echo path: canceller off; loss to the detector \(residual), gate \(Int(detector.echoGateDecibels.rounded())) dB")
            return
        }
        let path = echoCanceller.path
        let cancelled = "cancelled \(echoCanceller.cancelledFrames) of \(echoCanceller.frames) frames, idled \(echoCanceller.idlePeriods) times, reference moved \(echoCanceller.realignments) times keeping the filter, filter reset \(echoCanceller.resets) times"
        guard path.echoFound, let loss = path.lossDecibels, let delay = path.delayFrames else {
            log.debug("Echo path: no echo measured (\(cancelled)); loss to the detector \(residual)")
            return
        }
        log.debug("Echo path: ERL \(Int(loss.rounded())) dB, delay \(delay * 20) ms over \(path.measuredFrames) frames (\(cancelled)); loss after the canceller \(residual), gate \(Int(detector.echoGateDecibels.rounded())) dB")
        metrics?.echoMeasured(returnLossDecibels: Double(loss), delayNanoseconds: Int64(delay) * 20_000_000)
    }

    private func syncPlaying() {
        let now = (delegate?.agentQueuedSamples ?? 0) > 0
        guard now != playing else { return }
        playing = now
        perform(machine.handle(.agentSpeaking(now), at: loop.nanoseconds))
    }

    // MARK: ASR

    private func openASR() {
        let request = ModuleRequest(loop: loop, url: settings.urls.asr, uuid: uuid, contentType: "audio/l16",
                                    body: .streaming, tls: tls,
                                    timeoutMilliseconds: settings.requestTimeoutMilliseconds)
        asr = request
        request.onOpen = { [weak self, unowned request] in
            guard let self else { return }
            self.log.debug("ASR stream open")
            self.held.drain { request.send($0) }
            self.delegate?.speechOpened()
        }
        request.onHead = { [weak self] in
            self?.asrAnswered = true
            self?.asrRetries = 0
        }
        request.onBody = { [weak self] bytes in self?.asrBody(bytes) }
        request.onEnd = { [weak self, unowned request] failure in self?.asrEnded(request, failure) }
        request.start()
    }

    private func asrBody(_ bytes: UnsafeRawBufferPointer) {
        let now = loop.nanoseconds
        assembler.append(bytes, at: now)
        takeTurns(at: now)
    }

    /// Turns whose debounce passed, then the text of the turn still within it (when it
    /// changed): the machine speculates on the one and confirms the other.
    private func takeTurns(at now: UInt64) {
        syncPlaying()
        while !closed, let text = assembler.takeTurn(at: now) {
            reportedTentative = nil
            userSaid(text)
        }
        asrErrors()
        let tentative = assembler.tentative
        if !closed, tentative != reportedTentative {
            reportedTentative = tentative
            if let tentative { perform(machine.handle(.tentativeTranscript(tentative), at: now)) }
        }
        armTimer(at: now)
    }

    /// One timer for the assembler's debounce and the machine's wait for a silent caller.
    private func armTimer(at now: UInt64) {
        var next = assembler.deadline
        if let waiting = machine.deadline { next = min(next ?? waiting, waiting) }
        guard !closed, let deadline = next else {
            debounceTimer?.stop()
            return
        }
        if debounceTimer == nil { debounceTimer = try? Timer(loop: loop) }
        let wait = deadline > now ? (deadline - now + 999_999) / 1_000_000 : 0
        debounceTimer?.start(timeout: wait) { [weak self] in
            guard let self else { return }
            let now = self.loop.nanoseconds
            self.perform(self.machine.handle(.tick, at: now))
            self.takeTurns(at: now)
        }
    }

    /// Errors the ASR wrote into its stream (`{"message":…}` where a transcript goes): logged,
    /// never heard as words.
    private func asrErrors() {
        while !closed, let message = assembler.takeError() {
            delegate?.speechError(.pipeline(PipelineFailure(module: .asr, failure: .reportedError(message))))
        }
    }

    private func userSaid(_ text: String) {
        perform(machine.handle(.transcript(text), at: loop.nanoseconds))
    }

    private func asrEnded(_ request: ModuleRequest, _ failure: ModuleFailure?) {
        guard !closed, asr === request else { return }
        asr = nil
        reportedTentative = nil
        if let text = assembler.finish() { userSaid(text) }
        armTimer(at: loop.nanoseconds)
        asrErrors()
        guard !closed else { return }
        if let failure {
            let error = PipelineFailure(module: .asr, failure: failure)
            if !asrAnswered {
                // The stream could not be opened at all: the call cannot hear its caller.
                let delegate = self.delegate
                close()
                delegate?.speechClosed(.failed(.pipeline(error)))
                return
            }
            delegate?.speechError(.pipeline(error))
        } else {
            log.info("ASR response ended; reopening the stream")
        }
        asrRetries += 1
        let delay = Self.asrReopen.delay(afterFailures: asrRetries)
        if asrRetryTimer == nil { asrRetryTimer = try? Timer(loop: loop) }
        asrRetryTimer?.start(timeout: delay) { [weak self] in
            guard let self, !self.closed, self.asr == nil else { return }
            self.openASR()
        }
    }

    // MARK: Actions

    private func perform(_ actions: [PipelineTurnMachine.Action]) {
        for action in actions {
            guard !closed else { return }
            switch action {
            case .startLLM(let body): startLLM(body)
            case .cancelLLM:
                llm?.cancel()
                llm = nil
            case .startTTS(let text, let held): startTTS(text, held: held)
            case .cancelTTS:
                tts?.cancel()
                tts = nil
            case .releaseHeldAudio:
                holdingTTS = false
                if !heldTTS.isEmpty { heldTTS.withUnsafeBytes { delegate?.speechAgentAudio(pcm: $0) } }
                heldTTS = []
            case .discardHeldAudio:
                holdingTTS = false
                heldTTS = []
            case .clearPlayback:
                // The seam's one call clears playback at once and sends `interruption`.
                delegate?.speechInterrupted()
                playing = false
            case .webhookInterruption:
                break
            case .webhookTranscript(let role, let text):
                delegate?.speechTranscript(role: role, text: text)
            case .log(let note):
                write(note)
            }
        }
    }

    private func startLLM(_ body: [UInt8]) {
        llm?.cancel()
        llmParser = LLMReplyParser()
        let request = ModuleRequest(loop: loop, url: settings.urls.llm, uuid: uuid, contentType: "application/json",
                                    body: .fixed(body), tls: tls,
                                    timeoutMilliseconds: settings.requestTimeoutMilliseconds)
        llm = request
        request.onBody = { [weak self, unowned request] bytes in
            guard let self, self.llm === request else { return }
            self.llmEvents(self.llmParser.append(bytes), request)
        }
        request.onEnd = { [weak self, unowned request] failure in
            guard let self, self.llm === request else { return }
            if let failure {
                self.llm = nil
                self.delegate?.speechError(.pipeline(PipelineFailure(module: .llm, failure: failure)))
                self.perform(self.machine.handle(.llmFailed, at: self.loop.nanoseconds))
                return
            }
            self.llmEvents(self.llmParser.finish(), request)
            guard self.llm === request else { return }
            self.llm = nil
            self.perform(self.machine.handle(.llmEnded, at: self.loop.nanoseconds))
        }
        request.start()
    }

    private func llmEvents(_ events: [LLMReplyEvent], _ request: ModuleRequest) {
        for event in events {
            guard !closed, llm === request else { return }
            switch event {
            case .text(let text):
                perform(machine.handle(.llmText(text), at: loop.nanoseconds))
            case .status(let text):
                log.limited(.moduleError, .debug, "LLM status: \(text)")
            case .error(let text):
                log.limited(.moduleError, .warn, "LLM error message: \(text)")
            case .ignored(let type):
                log.limited(.unexpectedMessage, .debug, "LLM message of unknown type \"\(type)\" ignored")
            }
        }
    }

    private func startTTS(_ text: String, held: Bool) {
        tts?.cancel()
        ttsDecoder = TTSAudioDecoder()
        ttsFrames.reset()
        holdingTTS = held
        heldTTSOverflow = false
        let request = ModuleRequest(loop: loop, url: settings.urls.tts, uuid: uuid, contentType: "application/json",
                                    body: .fixed(ConversationHistory.ttsRequestBody(text: text)), tls: tls,
                                    timeoutMilliseconds: settings.requestTimeoutMilliseconds)
        tts = request
        request.onHead = { [weak self, unowned request] in
            guard let self, self.tts === request else { return }
            self.perform(self.machine.handle(.ttsStarted, at: self.loop.nanoseconds))
        }
        request.onBody = { [weak self, unowned request] bytes in self?.ttsBody(bytes, request) }
        request.onEnd = { [weak self, unowned request] failure in
            guard let self, self.tts === request else { return }
            self.tts = nil
            if let failure {
                self.delegate?.speechError(.pipeline(PipelineFailure(module: .tts, failure: failure)))
                self.perform(self.machine.handle(.ttsFailed, at: self.loop.nanoseconds))
                return
            }
            if self.ttsDecoder.finish() > 0 { self.log.debug("TTS audio ended on an odd byte (dropped)") }
            self.ttsFrames.flush { pcm in self.agentAudio(pcm) }
            if self.heldTTSOverflow {
                self.perform(self.machine.handle(.heldAudioFull, at: self.loop.nanoseconds))
                return
            }
            self.perform(self.machine.handle(.ttsEnded, at: self.loop.nanoseconds))
        }
        request.start()
    }

    private func ttsBody(_ bytes: UnsafeRawBufferPointer, _ request: ModuleRequest) {
        guard !closed, tts === request else { return }
        do throws(TTSAudioError) {
            try ttsDecoder.append(bytes) { pcm in ttsFrames.append(pcm) { frames in agentAudio(frames) } }
        } catch {
            log.warn("TTS: unusable audio (\(error)); request abandoned")
            request.cancel()
            tts = nil
            perform(machine.handle(.ttsFailed, at: loop.nanoseconds))
        }
        if heldTTSOverflow, tts === request {
            perform(machine.handle(.heldAudioFull, at: loop.nanoseconds))
        }
        syncPlaying()
    }

    /// Whole frames of TTS audio: to playback, or held while the turn is unconfirmed.
    private func agentAudio(_ pcm: UnsafeRawBufferPointer) {
        guard holdingTTS else {
            delegate?.speechAgentAudio(pcm: pcm)
            return
        }
        guard !heldTTSOverflow else { return }
        if heldTTS.count + pcm.count > heldTTSLimit {
            heldTTSOverflow = true
            return
        }
        heldTTS.append(contentsOf: pcm)
    }

    private func write(_ note: PipelineTurnMachine.Note) {
        switch note {
        case .replySuperseded(let dropped):
            log.info("New user turn while the previous reply was pending: reply cancelled"
                + (dropped > 0 ? ", \(dropped) unspoken sentence(s) dropped" : ""))
        case .bargeIn(let dropped, let cancelledLLM, let cancelledTTS):
            var cancelled: [String] = []
            if cancelledLLM { cancelled.append("LLM") }
            if cancelledTTS { cancelled.append("TTS") }
            log.info("Barge-in: the caller spoke over the agent"
                + (cancelled.isEmpty ? "" : ", \(cancelled.joined(separator: " and ")) request cancelled")
                + (dropped > 0 ? ", \(dropped) queued sentence(s) dropped" : ""))
        case .speechSuperseded(let dropped, let cancelledLLM, let cancelledTTS):
            var cancelled: [String] = []
            if cancelledLLM { cancelled.append("LLM") }
            if cancelledTTS { cancelled.append("TTS") }
            log.info("New user turn while the agent was speaking: playback stopped"
                + (cancelled.isEmpty ? "" : ", \(cancelled.joined(separator: " and ")) request cancelled")
                + (dropped > 0 ? ", \(dropped) queued sentence(s) dropped" : ""))
        case .speculationRestarted:
            log.debug("ASR piece within the debounce: speculative reply restarted with the joined text")
        case .turnConfirmed(let held):
            if let held {
                log.debug("User turn confirmed; its answer was held \(held / 1_000_000) ms waiting for confirmation")
            } else {
                log.debug("User turn confirmed; its answer was not ready yet (held 0 ms)")
            }
        case .heldAudioFull(let text):
            log.info("Held TTS audio of an unconfirmed turn reached \(heldTTSLimit / 16_000) s: \"\(text)\" is requested again once the turn is confirmed")
        case .replyLatency(let nanoseconds):
            log.debug("Reply latency (user turn's first ASR piece to first TTS response): \(nanoseconds / 1_000_000) ms")
        case .llmFailed(let droppedTail):
            if droppedTail { log.info("LLM reply cut short: its unfinished sentence is not spoken") }
        case .ttsFailed(let text):
            log.info("TTS failed for \"\(text)\"; moving on")
        }
    }
}

@available(*, unavailable)
extension PipelineBackend: Sendable {}
