/// The turn-taking of one pipeline call, as a pure state machine: events in (transcripts,
/// DTMF, what the LLM and TTS requests did, the caller's voice activity, whether playback
/// holds audio, the clock), actions out (start or cancel requests, hold or release TTS audio,
/// clear playback, webhooks, log notes). The clock is passed in; nothing here does I/O.
///
/// Rules:
/// - Preemptive turns. The first ASR piece of a turn (`tentativeTranscript`) starts the LLM
///   request at once, with the confirmed history plus the tentative text, and the TTS request
///   of the reply's first sentence as soon as that sentence exists, its audio *held* by the
///   backend. A further piece (the tentative text changed) cancels the speculative requests,
///   discards held audio and starts again with the joined text. The turn is *confirmed* when
///   the debounce has passed with no new piece (`transcript`) and the caller is not speaking
///   (`callerSpeaking`, from the voice detector; it runs only with `interruptListening ==
///   false`). While the caller is speaking, confirmation waits for `callerSilent`, at most
///   `maximumConfirmationWaitNanoseconds` after the debounce (`deadline`, then `tick`).
///   On confirmation: the user entry enters the history, the `user` transcript webhook goes
///   out, the held sentence becomes an `assistant` entry with its `agent` webhook, and its
///   audio is released into playback. Only one sentence is synthesised ahead of
///   confirmation; when its held audio outgrows the backend's cap (`heldAudioFull`) that TTS
///   request is cancelled and the sentence is requested again after confirmation.
/// - History: one `user` entry per confirmed transcript and per DTMF digit; one `assistant`
///   entry per sentence released to playback (sent to TTS once the turn is confirmed, or held
///   and released at confirmation): what the caller heard, at least in part. A speculative
///   request never changes the history.
/// - Greeting: `SYSTEM_MESSAGE` is spoken as one TTS request when the call starts, and
///   recorded as an `assistant` entry with its `agent` transcript webhook, like any other
///   spoken text: the caller heard it, so a stateless LLM must see it to understand the
///   answer ("yes, please").
/// - TTS requests are serialised: the next sentence goes out when the previous response has
///   ended (or failed). Its audio plays as it streams (the backend's job) unless held.
/// - A new user turn supersedes the reply in progress. When its first piece arrives, the old
///   reply's LLM request is cancelled and its sentences not yet sent to TTS are dropped (a
///   turn, once heard, is always confirmed: only its text can still grow). What the agent is
///   saying plays on until the new turn is confirmed (or a DTMF digit arrives); then, if the
///   agent is still speaking (audio queued for playback or its TTS response in flight),
///   playback is cleared, the TTS request cancelled and `interruption` sent, exactly as a
///   barge-in does (a barge-in that already did it leaves nothing to stop).
/// - A failed request ends only itself: complete sentences already received are spoken, the
///   unfinished tail of a failed reply is dropped, the TTS queue moves on.
/// - Barge-in (only with `interruptListening == false`, only while the agent speaks):
///   playback cleared first, then the TTS queue, the in-flight TTS and LLM requests of the
///   confirmed reply cancelled, and the `interruption` webhook. A speculative reply (the
///   caller's own pending turn) is left alone. Caller speech while the agent is silent is
///   ordinary turn-taking and changes nothing but `callerSpeaking`.
package struct PipelineTurnMachine: Sendable {
    package enum Event: Equatable, Sendable {
        /// The call started; `greeting` is `SYSTEM_MESSAGE`.
        case started(greeting: String?)
        /// The text of the turn being heard so far (ASR pieces within the debounce, cleaned):
        /// sent on every piece that changed it.
        case tentativeTranscript(String)
        /// A user turn from ASR whose debounce has passed (assembled and cleaned).
        case transcript(String)
        /// A DTMF key, as its ASCII byte: a user turn, confirmed at once.
        case dtmf(UInt8)
        /// Reply text from the LLM (any chunk of it).
        case llmText(String)
        case llmEnded
        case llmFailed
        /// The TTS response head arrived (2xx): audio follows.
        case ttsStarted
        case ttsEnded
        case ttsFailed
        /// The held audio of a speculative sentence reached the backend's cap.
        case heldAudioFull
        /// The voice-activity detector heard the caller start speaking.
        case bargeIn
        /// The voice-activity detector heard the caller stop speaking.
        case callerSilent
        /// Time passed (the backend's timer for `deadline`).
        case tick
        /// Playback started or stopped holding agent audio.
        case agentSpeaking(Bool)
    }

    package enum Action: Equatable, Sendable {
        case startLLM(body: [UInt8])
        case cancelLLM
        /// `held`: keep the response's audio out of playback until `releaseHeldAudio`.
        case startTTS(text: String, held: Bool = false)
        case cancelTTS
        /// Held TTS audio goes to playback, in order, and what the TTS request in flight
        /// (if any) still sends plays as it streams.
        case releaseHeldAudio
        /// Held TTS audio is thrown away.
        case discardHeldAudio
        case clearPlayback
        case webhookTranscript(role: TranscriptRole, text: String)
        case webhookInterruption
        case log(Note)
    }

    /// What is worth a log line; the backend words it.
    package enum Note: Equatable, Sendable {
        /// A user turn began while a reply was being generated or waiting for TTS: the LLM
        /// request (if any) was cancelled, `droppedSentences` of the old reply never spoken.
        case replySuperseded(droppedSentences: Int)
        /// A confirmed user turn stopped the agent speaking (as a barge-in does).
        case speechSuperseded(droppedSentences: Int, cancelledLLM: Bool, cancelledTTS: Bool)
        /// A further ASR piece changed the tentative turn: the speculative requests restarted.
        case speculationRestarted
        /// The turn was confirmed; `heldNanoseconds` is how long its answer (the first held
        /// TTS response) waited for that, nil when it was not ready yet.
        case turnConfirmed(heldNanoseconds: UInt64?)
        /// The held audio of `text` outgrew the cap: requested again after confirmation.
        case heldAudioFull(text: String)
        case bargeIn(droppedSentences: Int, cancelledLLM: Bool, cancelledTTS: Bool)
        /// From the user turn's first ASR piece (or its transcript, or the digit) to the head
        /// of the first TTS response of its reply.
        case replyLatency(nanoseconds: UInt64)
        /// The LLM request failed; `droppedTail` when an unfinished sentence was discarded.
        case llmFailed(droppedTail: Bool)
        case ttsFailed(text: String)
    }

    /// A user turn heard but not confirmed, and the reply being prepared for it.
    package struct Tentative: Equatable, Sendable {
        /// Parts whose debounce passed while the caller was still speaking.
        package var closed = ""
        /// The assembler's pending text.
        package var open = ""
        /// The text the speculative LLM request was made with.
        package var text = ""
        package var firstPieceAt: UInt64
        /// The debounce passed (at this time): confirmation waits only for the caller.
        package var debouncedAt: UInt64?
        /// The sentence sent to TTS ahead of confirmation, its audio held.
        package var heldSentence: String?
        /// When the held TTS response began.
        package var heldReadyAt: UInt64?
        /// The held audio overflowed: no more TTS until confirmation.
        package var ttsDeferred = false

        var joined: String { Self.join(closed, open) }

        static func join(_ a: String, _ b: String) -> String {
            a.isEmpty ? b : b.isEmpty ? a : a + " " + b
        }
    }

    /// How long a turn whose debounce has passed waits for the caller to stop speaking (the
    /// voice detector can hold "speaking" on a noisy line for as long as the noise lasts).
    package static let maximumConfirmationWaitNanoseconds: UInt64 = 1_500_000_000

    package let uuid: String
    package let interruptListening: Bool
    package private(set) var history = ConversationHistory()
    private var splitter = SentenceSplitter()
    /// Sentences waiting for their TTS request, in order.
    package private(set) var queue: [String] = []
    package private(set) var llmInFlight = false
    /// The sentence whose TTS request is in flight.
    package private(set) var ttsSentence: String?
    /// The TTS request in flight is a speculative one: its audio is held.
    package private(set) var ttsHeld = false
    package var ttsInFlight: Bool { ttsSentence != nil }
    /// Playback holds agent audio (as the backend last reported).
    package private(set) var playing = false
    /// The voice detector says the caller is speaking.
    package private(set) var callerSpeaking = false
    package private(set) var tentative: Tentative?
    /// When the current user turn began, until its first TTS response starts.
    private var turnStartedAt: UInt64?

    package init(uuid: String, interruptListening: Bool) {
        self.uuid = uuid
        self.interruptListening = interruptListening
    }

    /// The agent is speaking: audio queued for playback, or a TTS response on its way to it
    /// (a held one does not count: the caller hears nothing of it yet).
    package var agentSpeaking: Bool { playing || (ttsInFlight && !ttsHeld) }

    /// When the machine wants a `tick`: a debounced turn waiting for the caller to stop.
    package var deadline: UInt64? {
        guard let debounced = tentative?.debouncedAt else { return nil }
        return debounced &+ Self.maximumConfirmationWaitNanoseconds
    }

    package mutating func handle(_ event: Event, at now: UInt64) -> [Action] {
        var actions: [Action] = []
        switch event {
        case .started(let greeting):
            if let greeting, !greeting.isEmpty { queue.append(greeting) }
        case .tentativeTranscript(let text):
            heard(open: text, at: now, &actions)
        case .transcript(let text):
            debounced(text, at: now, &actions)
        case .dtmf(let digit):
            abandonSpeculation(&actions)
            confirmedTurn(String(UnicodeScalar(digit)), webhook: false, at: now, &actions)
        case .llmText(let chunk):
            guard llmInFlight else { break }
            queue.append(contentsOf: splitter.append(chunk))
        case .llmEnded:
            guard llmInFlight else { break }
            llmInFlight = false
            queue.append(contentsOf: splitter.finish())
        case .llmFailed:
            guard llmInFlight else { break }
            llmInFlight = false
            let tail = splitter.finish()
            actions.append(.log(.llmFailed(droppedTail: !tail.isEmpty)))
        case .ttsStarted:
            if let started = turnStartedAt {
                turnStartedAt = nil
                actions.append(.log(.replyLatency(nanoseconds: now &- started)))
            }
            if ttsHeld, tentative?.heldReadyAt == nil { tentative?.heldReadyAt = now }
        case .ttsEnded:
            ttsSentence = nil
            ttsHeld = false
        case .ttsFailed:
            guard let sentence = ttsSentence else { break }
            if ttsHeld {
                tentative?.heldSentence = nil
                tentative?.heldReadyAt = nil
                actions.append(.discardHeldAudio)
            }
            ttsSentence = nil
            ttsHeld = false
            actions.append(.log(.ttsFailed(text: sentence)))
        case .heldAudioFull:
            guard var pending = tentative, let sentence = pending.heldSentence else { break }
            if ttsHeld {
                actions.append(.cancelTTS)
                ttsSentence = nil
                ttsHeld = false
            }
            actions.append(.discardHeldAudio)
            actions.append(.log(.heldAudioFull(text: sentence)))
            queue.insert(sentence, at: 0)
            pending.heldSentence = nil
            pending.heldReadyAt = nil
            pending.ttsDeferred = true
            tentative = pending
        case .bargeIn:
            callerSpeaking = true
            bargeIn(&actions)
        case .callerSilent:
            callerSpeaking = false
            if tentative?.debouncedAt != nil { confirm(at: now, &actions) }
        case .tick:
            if let deadline, now >= deadline { confirm(at: now, &actions) }
        case .agentSpeaking(let speaking):
            playing = speaking
        }
        pump(&actions)
        return actions
    }

    // MARK: User turns

    /// A piece of a turn arrived: the tentative text is now `closed` + `open`.
    private mutating func heard(open: String, at now: UInt64, _ actions: inout [Action]) {
        var pending: Tentative
        if let current = tentative {
            pending = current
        } else {
            // A new turn begins: what the old reply has not yet sent to TTS is stale. What the
            // agent is saying plays on until the turn is confirmed.
            dropReply(&actions)
            pending = Tentative(firstPieceAt: now)
            turnStartedAt = now
        }
        pending.open = open
        pending.debouncedAt = nil
        speculate(&pending, at: now, &actions)
    }

    /// The debounce passed: `text` is the turn (or its latest part).
    private mutating func debounced(_ text: String, at now: UInt64, _ actions: inout [Action]) {
        guard var pending = tentative else {
            if callerSpeaking {
                // Heard only now (no piece was reported before): speculate, then wait.
                dropReply(&actions)
                var fresh = Tentative(closed: text, firstPieceAt: now)
                fresh.debouncedAt = now
                turnStartedAt = now
                speculate(&fresh, at: now, &actions)
                return
            }
            confirmedTurn(text, webhook: true, at: now, &actions)
            return
        }
        pending.closed = Tentative.join(pending.closed, text)
        pending.open = ""
        pending.debouncedAt = now
        speculate(&pending, at: now, &actions)
        if !callerSpeaking { confirm(at: now, &actions) }
    }

    /// (Re)starts the speculative reply when the tentative text changed; stores `pending`.
    private mutating func speculate(_ pending: inout Tentative, at now: UInt64, _ actions: inout [Action]) {
        let text = pending.joined
        guard text != pending.text else {
            tentative = pending
            return
        }
        if !pending.text.isEmpty {
            cancelSpeculativeRequests(&pending, &actions)
            actions.append(.log(.speculationRestarted))
        }
        pending.text = text
        tentative = pending
        var speculative = history
        speculative.addUser(text)
        actions.append(.startLLM(body: speculative.llmRequestBody(uuid: uuid, message: text)))
        llmInFlight = true
    }

    private mutating func cancelSpeculativeRequests(_ pending: inout Tentative, _ actions: inout [Action]) {
        if llmInFlight { actions.append(.cancelLLM) }
        llmInFlight = false
        if ttsHeld {
            actions.append(.cancelTTS)
            ttsSentence = nil
            ttsHeld = false
        }
        if pending.heldSentence != nil { actions.append(.discardHeldAudio) }
        pending.heldSentence = nil
        pending.heldReadyAt = nil
        pending.ttsDeferred = false
        queue.removeAll()
        splitter = SentenceSplitter()
    }

    /// A DTMF digit overrides a tentative turn: its speculative reply is dropped (the ASR
    /// text, once its debounce passes, becomes a turn of its own).
    private mutating func abandonSpeculation(_ actions: inout [Action]) {
        guard var pending = tentative else { return }
        cancelSpeculativeRequests(&pending, &actions)
        tentative = nil
    }

    /// The tentative turn is confirmed: the old reply stops, the speculative one is released.
    private mutating func confirm(at now: UInt64, _ actions: inout [Action]) {
        guard let pending = tentative else { return }
        supersedeSpeech(&actions)
        tentative = nil
        let text = pending.text
        actions.append(.webhookTranscript(role: .user, text: text))
        history.addUser(text)
        if let sentence = pending.heldSentence {
            history.addAssistant(sentence)
            actions.append(.webhookTranscript(role: .agent, text: sentence))
            actions.append(.releaseHeldAudio)
        }
        ttsHeld = false
        actions.append(.log(.turnConfirmed(heldNanoseconds: pending.heldReadyAt.map { now &- $0 })))
    }

    /// A turn confirmed the moment it is known (a DTMF digit, or a transcript with no
    /// speculation before it): the old reply stops, a new LLM request starts.
    private mutating func confirmedTurn(_ text: String, webhook: Bool, at now: UInt64, _ actions: inout [Action]) {
        supersedeSpeech(&actions)
        dropReply(&actions)
        if webhook { actions.append(.webhookTranscript(role: .user, text: text)) }
        history.addUser(text)
        actions.append(.startLLM(body: history.llmRequestBody(uuid: uuid, message: text)))
        llmInFlight = true
        turnStartedAt = now
    }

    /// The old reply's LLM request and unsent sentences go (its speech is left alone).
    private mutating func dropReply(_ actions: inout [Action]) {
        if llmInFlight { actions.append(.cancelLLM) }
        if llmInFlight || !queue.isEmpty { actions.append(.log(.replySuperseded(droppedSentences: queue.count))) }
        llmInFlight = false
        queue.removeAll()
        splitter = SentenceSplitter()
    }

    /// A confirmed turn while the agent is speaking stops it, as a barge-in does. Only the
    /// old reply is touched: a held TTS request belongs to the turn being confirmed.
    private mutating func supersedeSpeech(_ actions: inout [Action]) {
        guard agentSpeaking else { return }
        let cancelledTTS = ttsInFlight && !ttsHeld
        let cancelledLLM = tentative == nil && llmInFlight
        let dropped = tentative == nil ? queue.count : 0
        actions.append(.clearPlayback)
        if cancelledTTS {
            actions.append(.cancelTTS)
            ttsSentence = nil
        }
        if cancelledLLM {
            actions.append(.cancelLLM)
            llmInFlight = false
            queue.removeAll()
            splitter = SentenceSplitter()
        }
        actions.append(.webhookInterruption)
        actions.append(.log(.speechSuperseded(droppedSentences: dropped, cancelledLLM: cancelledLLM, cancelledTTS: cancelledTTS)))
        playing = false
    }

    // MARK: Barge-in and TTS

    private mutating func bargeIn(_ actions: inout [Action]) {
        guard !interruptListening, agentSpeaking else { return }
        // With a turn pending, the LLM request and the queue are its speculative reply.
        let speculating = tentative != nil
        let cancelledLLM = !speculating && llmInFlight
        let cancelledTTS = ttsInFlight && !ttsHeld
        let dropped = speculating ? 0 : queue.count
        actions.append(.clearPlayback)
        if cancelledTTS { actions.append(.cancelTTS) }
        if cancelledLLM { actions.append(.cancelLLM) }
        actions.append(.webhookInterruption)
        actions.append(.log(.bargeIn(droppedSentences: dropped, cancelledLLM: cancelledLLM, cancelledTTS: cancelledTTS)))
        if !speculating {
            queue.removeAll()
            splitter = SentenceSplitter()
            llmInFlight = false
            turnStartedAt = nil
        }
        if cancelledTTS { ttsSentence = nil }
        playing = false
    }

    /// Sends the next sentence to TTS when none is in flight. Ahead of confirmation only the
    /// reply's first sentence goes, its audio held.
    private mutating func pump(_ actions: inout [Action]) {
        guard !ttsInFlight, !queue.isEmpty else { return }
        if var pending = tentative {
            guard pending.heldSentence == nil, !pending.ttsDeferred else { return }
            let sentence = queue.removeFirst()
            pending.heldSentence = sentence
            tentative = pending
            ttsSentence = sentence
            ttsHeld = true
            actions.append(.startTTS(text: sentence, held: true))
            return
        }
        let sentence = queue.removeFirst()
        history.addAssistant(sentence)
        ttsSentence = sentence
        actions.append(.webhookTranscript(role: .agent, text: sentence))
        actions.append(.startTTS(text: sentence))
    }
}
