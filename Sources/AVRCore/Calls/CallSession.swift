import AVRProtocol

/// One call: the caller's leg from Asterisk (an AudioSocket connection, or Asterisk's
/// WebSocket channel on `/media`; see `CallerLeg`) and its speech backend.
///
/// The call's life (awaiting its UUID, claiming its route with the caller's input held, live,
/// playing out what the agent said before hanging up, ended once) is `CallStateMachine`'s:
/// this class feeds it the events and executes its actions. Playback starts with the route,
/// before any caller audio: it is 8 kHz PCM, which the leg writes in the form its caller
/// takes (AudioSocket: always slin `0x10`). Caller frames are decoded to 8 kHz PCM by
/// `CallerAudioDecoder` and handed to the backend, which speaks whatever wire protocol it
/// speaks; the backend's audio goes into `playout`, which the loop's `PlaybackScheduler`
/// drains one 20 ms frame per tick (silence when empty, ambient noise mixed under
/// everything). The call ends exactly once, whoever ends it, and `call_ended` is sent then
/// (for calls that got as far as a UUID), with the reason, the duration and the quality
/// figures of the call's quality line.
final class CallSession: PacedPlayer, SpeechBackendDelegate {
    enum EndReason: CustomStringConvertible {
        case callerHungUp
        case callerClosed
        case callerError(code: [UInt8])
        case protocolError(AudioSocketConnectionStateMachine.ProtocolViolation)
        /// The WebSocket media leg broke its protocol (bad frames, no or unusable MEDIA_START).
        case mediaProtocolError(String)
        /// The backend ended the conversation in good order (its queued audio played out).
        case backendClosed(SpeechBackendKind?)
        /// The backend failed (`call_ended` names it), or none could be made (nil).
        case backendFailed(SpeechBackendKind?, SpeechFailure)
        case shutdown
        /// Closed before it sent its UUID (see `AwaitingUUIDQueue`): not a call yet.
        case unidentified(AwaitingUUIDQueue.CloseReason)

        /// The reason `call_ended` and the quality line report; nil for a connection that
        /// never became a call.
        var callEndReason: CallEndReason? {
            switch self {
            case .callerHungUp: .callerHangup
            case .callerClosed: .callerClosed
            case .callerError: .callerError
            case .protocolError, .mediaProtocolError: .protocolError
            case .backendClosed: .backendClosed
            case .backendFailed: .backendFailed
            case .shutdown: .shutdown
            case .unidentified: nil
            }
        }

        /// The `reason` label of `avr_calls_ended_total` and the quality line.
        var metricLabel: String {
            if case .unidentified(let reason) = self { return reason.metricLabel }
            return callEndReason?.rawValue ?? "unknown"
        }

        var description: String {
            switch self {
            case .callerHungUp: "caller hung up"
            case .callerClosed: "caller closed the connection"
            case .callerError(let code): "Asterisk reported an error" + (code.isEmpty ? "" : " (code \(code.map { String($0) }.joined(separator: ",")))")
            case .protocolError(let violation): "AudioSocket protocol error: \(violation)"
            case .mediaProtocolError(let reason): "WebSocket media protocol error: \(reason)"
            case .backendClosed(let backend): "\(backend?.speaker ?? "Speech backend") closed the connection"
            case .backendFailed(let backend?, let failure): "\(backend.speaker) failed: \(failure)"
            case .backendFailed(nil, let failure): "No speech backend: \(failure)"
            case .shutdown: "server shutting down"
            case .unidentified(let reason): "closed before its UUID (\(reason.metricLabel))"
            }
        }

        /// The machine's event for this ending (it decides whether Asterisk is told to hang
        /// up: not when the caller ended the call itself, nor for a connection that never
        /// became a call).
        var event: CallStateMachine.Event {
            switch self {
            case .callerHungUp: .callerHungUp
            case .callerClosed: .callerClosed
            case .callerError: .callerError
            case .protocolError, .mediaProtocolError: .protocolError
            case .backendClosed: .backendFinished(playoutEmpty: true)
            case .backendFailed: .backendFailed
            case .shutdown: .shutdown
            case .unidentified: .closedUnidentified
            }
        }
    }

    private let context: CallContext
    private let leg: CallerLeg
    private(set) var log: Logger
    private var machine = CallStateMachine()
    var uuid: CallUUID? { machine.uuid }
    private var backend: SpeechBackend?
    private var audioDecoder = CallerAudioDecoder(maximumFrameBytes: AudioSocketDecoder.defaultMaximumPayloadLength)
    /// The agent's audio and what goes out each 20 ms (see `PlayoutController`).
    private var playout: PlayoutController
    private var playbackOverflowLogged = false
    private var stallLogged = false
    /// A frame sent at once from inside a backend callback, whose `agentFramePlayed` waits for
    /// the next tick (the backend is mid-delivery then; it is not called back into).
    private var promptPlayed: UnsafeMutableBufferPointer<Int16>?
    private var promptPlayedCount = 0
    /// The line's clock, from the times frames went out: holes in it are told to the backend
    /// (`SpeechBackend.agentLineSilent`) before the frame after them.
    private var lineTimeline = LineTimeline()
    private var inTick = false
    private var ambient: AmbientNoise?
    var ended: Bool { machine.isEnded }
    var schedulerPosition: (slot: Int, index: Int)?
    /// Called once the connection is closed and the call forgotten.
    var onClosed: (() -> Void)?
    /// Called when the UUID arrives (the connection is a call from then on).
    var onIdentified: (() -> Void)?
    /// The caller's address (for log lines about the connection).
    var peerAddress: SocketAddress? { leg.peerAddress }
    private var droppedPlaybackFrames = 0
    /// For the metrics and the quality line (monotonic nanoseconds).
    private var quality = CallQuality()
    private var jitter = ArrivalJitter()

    init(context: CallContext, leg: CallerLeg) {
        self.context = context
        self.leg = leg
        log = context.log
        ambient = context.ambient
        playout = PlayoutController(queue: PlaybackQueue(capacityLimit: context.configuration.playbackQueueLimitMilliseconds * 8,
                                                         initialCapacity: 960))
    }

    deinit {
        promptPlayed?.deallocate()
    }

    func start() {
        leg.start(self)
    }

    // MARK: From the caller's leg

    /// The connection is closed: the call is forgotten.
    func legClosed() {
        let callback = onClosed
        onClosed = nil
        callback?()
    }

    func callerDTMF(_ digit: DTMFDigit) {
        log.limited(.dtmf, .info, "DTMF digit: \(digit)")
        if machine.callerDTMF(digit.ascii) == .forward { backend?.sendDTMF(digit.ascii) }
        sendPerMessageWebhook(.dtmfDigit(digit))
    }

    /// The leg knows the caller's codec (the WebSocket channel names it in MEDIA_START):
    /// no detection, and the codec is logged and counted as a detected one would be.
    /// `codec` nil: signed linear above 8 kHz, which the decoder resamples (and counts) as
    /// on AudioSocket; only the line is logged here.
    func callerCodecKnown(_ codec: AudioCodec?, name: String) {
        if let codec {
            audioDecoder = CallerAudioDecoder(maximumFrameBytes: AudioSocketDecoder.defaultMaximumPayloadLength, knownCodec: codec)
            context.metrics.server.codecDetected(codec)
        }
        quality.codec = name
        log.info("Audio codec: \(name) (from MEDIA_START)")
    }

    /// The call's UUID is known: the connection is a call from now on.
    func callerIdentified(_ uuid: CallUUID) {
        run(.uuidReceived(uuid))
    }

    private func routeKnown(_ route: CallRoute?) {
        run(.routeAnswered(found: route != nil, at: context.loop.nanoseconds), route: route)
    }

    /// One frame of caller audio, as an AudioSocket kind says (the WebSocket leg maps its
    /// format to the same kinds: `slin16` is `audio16kHz`).
    func callerAudio(kind: AudioSocketKind, payload: UnsafeRawBufferPointer) {
        let arrival = context.loop.nanoseconds
        context.metrics.framesReceived += 1
        quality.framesIn += 1
        let backend = self.backend
        // Loop time (milliseconds, cached per iteration) is precise enough for a byte rate
        // measured over a second. Playback goes back as 8 kHz slin whatever the caller sends.
        // While the route is claimed the machine holds the audio; live, it goes on at once.
        let duration = audioDecoder.decode(kind: kind, payload: payload, at: context.loop.milliseconds &* 1_000_000,
                                           scratch: &context.scratch.pcm) { pcm in
            if self.machine.callerAudio(pcm) == .forward { backend?.sendCallerAudio(pcm) }
        }
        if let event = audioDecoder.takeEvent() { logCodec(event) }
        recordJitter(arrival, duration)
    }

    @inline(__always) private func recordJitter(_ arrival: UInt64, _ duration: UInt64) {
        if let deviation = jitter.observe(at: arrival, duration: duration) {
            context.metrics.recordJitter(nanoseconds: deviation)
        }
    }

    private func logCodec(_ change: CallerAudioDecoder.Event) {
        let event: CodecDetector.Event
        switch change {
        case .resampling(let rate):
            quality.codec = "SLIN\(rate / 1000)"
            context.metrics.server.codecDetected(.slin)
            log.info("Audio codec detected: SLIN")
            log.debug("Caller audio at \(rate) Hz, resampled to 8000 Hz")
            return
        case .codec(let decided):
            event = decided
        }
        quality.codec = event.codec.description
        context.metrics.server.codecDetected(event.codec)
        let evidence = switch event.evidence {
        case .frameSize(let bytes): "\(bytes)-byte frames"
        case .byteRate(let rate): "\(rate) bytes/s"
        case .content: "content"
        }
        if let previous = event.previous {
            log.warn("Audio codec corrected: \(event.codec) (was \(previous); \(evidence))")
        } else {
            log.info("Audio codec detected: \(event.codec)")
            log.debug("Codec evidence: \(evidence)")
        }
    }

    // MARK: Playback

    func playFrames(_ count: Int, from deadline: UInt64, skipped: Int) {
        guard !ended else { return }
        quality.framesLate += skipped
        notifyPromptPlayed()
        if leg.sendsAhead {
            // The channel paces: after MEDIA_XOFF nothing leaves the playout queue (it has its
            // own limit), so nothing is dropped; while the channel plays what it holds of ours
            // the tick only tops it up.
            let now = context.loop.nanoseconds
            guard leg.mayWrite(at: now) else { return }
            if !leg.channelNearlyDrained(at: now) { return sendAhead() }
        }
        // A backend that queues audio from inside `agentFramePlayed` gets it played at a tick,
        // not written over the frame in the shared scratch buffer.
        inTick = true
        defer { inTick = false }
        let scratch = context.scratch
        let interval = playout.settings.interval
        var sent = 0
        var silent = 0
        var dropped = 0
        var playedOut = false
        for index in 0..<count {
            // Asked every frame: the backend may end the conversation from `agentFramePlayed`.
            let playingOut = machine.isPlayingOut
            if playingOut && playout.isEmpty {
                playedOut = true
                break
            }
            let length: Int
            switch playout.tick(at: deadline &+ UInt64(index) &* interval, into: scratch.samples, streamOpen: !playingOut) {
            case .nothing:
                // A held slot leaves the line silent: the backend learns each whole frame of it.
                let silent = lineTimeline.nothingSent(at: deadline &+ UInt64(index) &* interval)
                if silent > 0 { backend?.agentLineSilent(samples: silent) }
                continue
            case .silence:
                scratch.samples.update(repeating: 0)
                length = scratch.samples.count
                silent += 1
            case .speech(let samples):
                length = samples
            }
            let frame = UnsafeMutableBufferPointer(rebasing: scratch.samples[0..<length])
            if send(frame, at: deadline &+ UInt64(index) &* interval, notify: true) { sent += 1 } else { dropped += 1 }
        }
        // The loop fell behind (late or skipped ticks): one more frame, until the queue is back
        // on the agent's schedule (PlayoutController rule 5).
        if !playedOut {
            let length = playout.catchUpFrame(into: scratch.samples, now: context.loop.nanoseconds)
            if length > 0 {
                let frame = UnsafeMutableBufferPointer(rebasing: scratch.samples[0..<length])
                if send(frame, at: nil, notify: true) { sent += 1 } else { dropped += 1 }
            }
        }
        tally(sent: sent, silent: silent, dropped: dropped)
        if playedOut { return run(.playoutDrained) }
        // The tick's own frame went on the grid (a stream in real time stays on it, as with
        // `core`); whatever else is queued in whole frames follows at once.
        if leg.sendsAhead { sendAhead() }
    }

    /// The channel's queue paces (`WS_MEDIA_PACING=asterisk`): every whole frame queued goes
    /// now, as far as the leg may write (`MEDIA_XOFF`, its queue's estimate, the socket).
    private func sendAhead() {
        let now = context.loop.nanoseconds
        inTick = true
        defer { inTick = false }
        let scratch = context.scratch
        var sent = 0
        var dropped = 0
        while leg.mayWrite(at: now) {
            let length = playout.aheadFrame(into: scratch.samples, now: now)
            guard length > 0 else { break }
            let frame = UnsafeMutableBufferPointer(rebasing: scratch.samples[0..<length])
            if send(frame, at: nil, notify: true) { sent += 1 } else { dropped += 1 }
        }
        tally(sent: sent, silent: 0, dropped: dropped)
    }

    /// Tallies once per call and tick, not per frame (see LoopMetrics).
    private func tally(sent: Int, silent: Int, dropped: Int) {
        let metrics = context.metrics
        metrics.framesSent += sent
        metrics.silenceFrames += silent
        metrics.droppedBackpressure += dropped
        quality.framesOut += sent
    }

    /// Mixes the ambient noise in and writes one frame (160 samples, fewer for a short tail);
    /// false when it was dropped because Asterisk is not reading. With `notify`, the backend
    /// learns the frame as it goes out, ambient noise included (the echo canceller's reference).
    /// `time` is when it goes out (the tick's slot, or now; nil for a catch-up frame, which
    /// follows the frame before it): a hole of a frame or more on the line before it is told to
    /// the backend first.
    private func send(_ frame: UnsafeMutableBufferPointer<Int16>, at time: UInt64?, notify: Bool = false) -> Bool {
        if let time {
            let silent = lineTimeline.sent(samples: frame.count, at: time)
            if silent > 0 { backend?.agentLineSilent(samples: silent) }
        } else {
            lineTimeline.sentBehind(samples: frame.count)
        }
        ambient?.mix(into: frame)
        if notify { backend?.agentFramePlayed(UnsafeBufferPointer(frame)) }
        guard leg.sendAgentFrame(frame) else {
            droppedPlaybackFrames += 1
            return false
        }
        return true
    }

    /// Agent audio arrived while the call was not playing: its first frame goes out now, not
    /// at the next tick, and the call's grid restarts from it.
    private func sendPromptFrame() {
        guard !ended, !inTick, schedulerPosition != nil else { return }
        let scratch = context.scratch
        let now = context.loop.nanoseconds
        // The channel paces and is full (`MEDIA_XOFF`): the frame stays queued for a tick.
        if leg.sendsAhead && !leg.mayWrite(at: now) { return }
        let count = playout.promptFrame(into: scratch.samples, now: now)
        guard count > 0 else { return }
        // The next frame is due when this one has played (20 ms, less for a short frame).
        let settings = playout.settings
        context.scheduler.rephase(self, earliest: now &+ UInt64(count) &* settings.nanosecondsPerSample &- settings.earlyTolerance)
        let frame = UnsafeMutableBufferPointer(rebasing: scratch.samples[0..<count])
        notifyPromptPlayed()
        let sent = send(frame, at: now)
        // After `send`: the copy holds the frame as played, ambient noise included.
        let copy = promptPlayed ?? {
            let buffer = UnsafeMutableBufferPointer<Int16>.allocate(capacity: scratch.samples.count)
            promptPlayed = buffer
            return buffer
        }()
        _ = copy.initialize(fromContentsOf: frame)
        promptPlayedCount = count
        let metrics = context.metrics
        metrics.framesSent += sent ? 1 : 0
        metrics.droppedBackpressure += sent ? 0 : 1
        quality.framesOut += sent ? 1 : 0
    }

    private func notifyPromptPlayed() {
        guard promptPlayedCount > 0, let promptPlayed else { return }
        let count = promptPlayedCount
        promptPlayedCount = 0
        backend?.agentFramePlayed(UnsafeBufferPointer(rebasing: promptPlayed[0..<count]))
    }

    // MARK: From the speech backend

    func speechOpened() {
        if let backend { quality.backend = backend.kind }
        log.debug("Speech backend open: \(quality.backend?.rawValue ?? SpeechBackendKind.noneLabel)")
        run(.backendReady)
    }

    /// The backend's connection is up: its connect time, once.
    private func backendReady() {
        if let started = quality.legStartedAt, quality.stsConnect == nil, let backend = quality.backend {
            let elapsed = context.loop.nanoseconds &- started
            quality.stsConnect = elapsed
            context.metrics.server.backendConnected(backend, nanoseconds: elapsed)
        }
    }

    func speechAgentAudio(pcm: UnsafeRawBufferPointer) {
        let droppedBefore = playout.queue.droppedSamples
        let arrival = playout.append(pcmLittleEndian: pcm, now: context.loop.nanoseconds)
        agentAudioQueued(arrival, droppedBefore: droppedBefore)
    }

    func speechAgentAudio(base64: UnsafeRawBufferPointer) throws(Base64Error) {
        let droppedBefore = playout.queue.droppedSamples
        let arrival = try playout.append(base64LittleEndianPCM: base64, now: context.loop.nanoseconds)
        agentAudioQueued(arrival, droppedBefore: droppedBefore)
    }

    private func agentAudioQueued(_ arrival: PlayoutController.Arrival, droppedBefore: Int) {
        if quality.firstAudio == nil, quality.startedAt != 0, let backend = quality.backend {
            let elapsed = context.loop.nanoseconds &- quality.startedAt
            quality.firstAudio = elapsed
            context.metrics.server.firstAudio(backend, nanoseconds: elapsed)
        }
        if playout.queue.queuedSamples > quality.largestQueueSamples { quality.largestQueueSamples = playout.queue.queuedSamples }
        if playout.queue.droppedSamples != droppedBefore {
            // Whole 20 ms frames' worth (160 samples) of what did not fit.
            context.metrics.droppedQueueLimit += playout.queue.droppedSamples / 160 - droppedBefore / 160
        }
        if playout.queue.droppedSamples != droppedBefore && !playbackOverflowLogged {
            playbackOverflowLogged = true
            log.warn("Playback queue full (\(playout.queue.capacityLimit / 8) ms ahead of the caller): "
                + "the speech service sends faster than real time; audio beyond the limit is dropped (PLAYBACK_QUEUE_LIMIT)")
        }
        if arrival.stall && !stallLogged {
            stallLogged = true
            log.warn("Playback stall: the speech service stopped mid-speech, then sent \(playout.queue.queuedSamples / 8) ms at once; "
                + "the caller is \(playout.addedDelaySamples / 8) ms behind until pauses in it are skipped")
        }
        if arrival.frameDue { sendPromptFrame() }
    }

    /// What the agent has still to say: our playout queue, and when the channel paces
    /// (`WS_MEDIA_PACING=asterisk`) what it holds of ours (the pipeline's barge-in asks this).
    var agentQueuedSamples: Int { playout.queuedSamples + leg.channelHeldSamples(at: context.loop.nanoseconds) }

    func speechInterrupted() {
        playout.clear()
        leg.agentAudioFlushed()
        log.limited(.interruption, .info, "Interruption: playback queue cleared")
        sendPerMessageWebhook(.interruption)
    }

    func speechTranscript(role: TranscriptRole, text: String) {
        log.limited(.transcript, .info, "Transcript (\(role)): \(text)")
        sendPerMessageWebhook(.transcription(role: role, text: text))
    }

    func speechError(_ error: SpeechFailure) {
        log.limited(.serviceError, .error, "\(error)")
    }

    // MARK: Webhooks

    /// Per-message events (`dtmf_digit`, `transcription`, `interruption`) share one budget
    /// per call (`perMessageWebhooks`); beyond it they are not sent but counted, and the
    /// count is logged when the call ends. Lifecycle events never go through it.
    private func sendPerMessageWebhook(_ event: WebhookEvent) {
        guard let uuid, let webhooks = context.webhooks else { return }
        guard perMessageWebhooks.take(now: context.loop.milliseconds) else {
            unsentWebhooks += 1
            return
        }
        webhooks.send(event, uuid: uuid)
    }

    /// The per-call budget of per-message webhooks: a burst of 20, then 10 a second.
    private var perMessageWebhooks = TokenBucket(perSecond: 10, burst: 20)
    private var unsentWebhooks = 0

    func speechClosed(_ reason: SpeechCloseReason) {
        // The backend in use now (a failover backend may have changed transport).
        if let backend { quality.backend = backend.kind }
        switch reason {
        case .failed(let failure):
            let backend = quality.backend
            log.error("\(backend?.failureHeading ?? "Speech backend failed"): \(failure)")
            run(.backendFailed, ending: .backendFailed(backend, failure))
        case .finished, .endedWithoutCloseFrame:
            if case .endedWithoutCloseFrame = reason { log.info("STS closed the connection without a close frame") }
            // Play out what is queued, then hang up (see playFrames); when the channel paces,
            // what it still holds of ours is queued too.
            run(.backendFinished(playoutEmpty: playout.isEmpty && leg.channelNearlyDrained(at: context.loop.nanoseconds)))
        }
    }

    // MARK: The machine's actions

    /// Ends the call once (see `CallStateMachine`): stops playback, closes the backend,
    /// tells Asterisk to hang up when it did not end the call itself, and sends `call_ended`.
    func end(_ reason: EndReason) {
        run(reason.event, ending: reason)
    }

    /// Feeds `event` to the machine and executes its actions in order. `ending`: the reason
    /// in full, when the event ends the call (the machine knows only its `CallEndReason`);
    /// `route`: the claimed route, with `routeAnswered`.
    private func run(_ event: CallStateMachine.Event, ending: EndReason? = nil, route: CallRoute? = nil) {
        for action in machine.handle(event) {
            perform(action, ending: ending, route: route)
        }
    }

    private func perform(_ action: CallStateMachine.Action, ending: EndReason?, route: CallRoute?) {
        switch action {
        case .announceCall(let uuid):
            let identified = onIdentified
            onIdentified = nil
            identified?()
            log = context.log.with(uuid: uuid)
            quality.startedAt = context.loop.nanoseconds
            context.metrics.server.callsStarted.increment()
            context.metrics.server.callsActive.increment()
            context.webhooks?.send(.callStarted, uuid: uuid)
        case .claimRoute(let uuid):
            switch context.lookupRoute(uuid, later: { [weak self] route in self?.routeKnown(route) }) {
            case .now(let route):
                routeKnown(route)
            case .later:
                // The claim is in flight (shared registry): the caller's audio is held exactly
                // as while an STS connects, and the line plays from now on.
                run(.claimDeferred(at: context.loop.nanoseconds))
            }
        case .startPlayback:
            // The line never goes dead, and a caller who says nothing still hears the greeting.
            context.scheduler.add(self)
        case .claimTook(let nanoseconds):
            log.debug("Route claimed in \(nanoseconds / 1000) µs")
        case .createBackend(let routeFound):
            createBackend(route, found: routeFound)
        case .startBackend:
            backend?.start()
        case .releaseHeldInput:
            var held = machine.takeHeldInput()
            guard !held.isEmpty, let backend else { return }
            let takesAudio = backend.takesHeldAudio
            held.release(audio: { if takesAudio { backend.sendCallerAudio($0) } }, digits: { backend.sendDTMF($0) })
        case .noteBackendReady:
            backendReady()
        case .forgetBackend:
            backend = nil
        case .endCall:
            if uuid == nil, case .protocolError(let violation) = ending {
                log.warn("AudioSocket protocol error from \(leg.peerAddress?.description ?? "?"): \(violation); closing")
            }
            if uuid == nil, case .mediaProtocolError(let why) = ending {
                log.warn("WebSocket media protocol error from \(leg.peerAddress?.description ?? "?"): \(why); closing")
            }
            context.scheduler.remove(self)
        case .closeBackend:
            let backend = self.backend
            self.backend = nil
            backend?.delegate = nil
            backend?.close()
        case .closeCallerLeg(let hangup):
            leg.close(hangup: hangup)
        case .reportCallEnded(let identified):
            // The machine ends a call by itself only when the agent's audio has played out.
            report(ending ?? .backendClosed(quality.backend), identified: identified)
        }
    }

    /// The route is known: the backend it names (or the default one) is made.
    private func createBackend(_ route: CallRoute?, found: Bool) {
        guard let uuid else { return }
        log.info("Call started from \(leg.peerAddress?.description ?? "?")" + (found ? "" : " (no prior POST /call)"))
        let backend: SpeechBackend
        switch context.makeBackend(route, uuid, log) {
        case .failure(let failure): return run(.backendFailed, ending: .backendFailed(nil, failure))
        case .success(let made): backend = made
        }
        self.backend = backend
        backend.delegate = self
        // What the call reports and times is the backend's to say (`SpeechBackendKind`).
        let kind = backend.kind
        quality.backend = kind
        if let leg = kind.connectLeg {
            quality.legStartedAt = context.loop.nanoseconds
            quality.leg = leg
        }
        run(.backendCreated)
    }

    /// Losses, and for a call its metrics, quality line and `call_ended`.
    private func report(_ reason: EndReason, identified: Bool) {
        playout.clear()
        let playback = playout.queue
        if droppedPlaybackFrames > 0 || playback.droppedSamples > 0 {
            log.warn("Playback losses: \(droppedPlaybackFrames) frame(s) dropped while Asterisk was not reading, "
                + "\(playback.droppedSamples) sample(s) dropped past the \(playback.capacityLimit / 8) ms queue limit")
        }
        guard identified, let uuid else { return }
        let metrics = context.metrics
        let duration = context.loop.nanoseconds &- quality.startedAt
        metrics.flush()
        metrics.server.callsActive.decrement()
        metrics.server.callEnded(reason: reason.metricLabel, backend: quality.backend)
        metrics.server.callDuration.recordNanoseconds(Int64(duration))
        log.flushSuppressed()
        if unsentWebhooks > 0 {
            log.warn("Webhooks: \(unsentWebhooks) dtmf_digit/transcription/interruption event(s) not sent "
                + "(over the per-call rate of 10 a second after a burst of 20)")
        }
        // One summary for the quality line and `call_ended`, so the two always agree.
        var summary = quality.summary(duration: duration, reason: reason.callEndReason ?? .shutdown,
                                      detail: reason.description,
                                      framesDropped: droppedPlaybackFrames + playback.droppedSamples / 160)
        summary.addPlayout(playout)
        log.info("Call quality", fields: CallQuality.logFields(summary))
        log.info("Call ended: \(reason)")
        context.webhooks?.send(.callEnded(summary), uuid: uuid)
    }
}

extension CallSession.EndReason {
    init(_ reason: AudioSocketConnectionStateMachine.HangupReason) {
        switch reason {
        case .peerHangup: self = .callerHungUp
        case .peerClosed: self = .callerClosed
        case .peerError(let code): self = .callerError(code: code)
        case .protocolViolation(let violation): self = .protocolError(violation)
        case .local: self = .shutdown
        }
    }
}

@available(*, unavailable)
extension CallSession: Sendable {}
