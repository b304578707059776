/// The turn-taking of one pipeline call, as a pure state machine: events in (transcripts,
/// DTMF, what the LLM and TTS requests did, barge-in, whether playback holds audio), actions
/// out (start or cancel requests, clear playback, webhooks, log notes). The clock is passed
/// in; nothing here does I/O.
///
/// Rules (PIPELINE.md §2–4, and the decisions where it is silent):
/// - History: one `user` entry per transcript and per DTMF digit; one `assistant` entry per
///   sentence *sent* to TTS (what the caller heard, at least in part). Sentences dropped by a
///   barge-in or a newer user turn before they were sent never enter it.
/// - Greeting: `SYSTEM_MESSAGE` is spoken as one TTS request when the call starts, and
///   recorded as an `assistant` entry with its `agent` transcript webhook, like any other
///   spoken text: the caller heard it, so a stateless LLM must see it to understand the
///   answer ("yes, please").
/// - TTS requests are serialised: the next sentence goes out when the previous response has
///   ended (or failed). Its audio plays as it streams (the backend's job).
/// - A new user turn (transcript or digit) while a reply is still being generated cancels
///   that LLM request and starts a new one with the whole history; sentences of the old
///   reply not yet sent to TTS are dropped (stale). A sentence already being spoken plays on:
///   cutting it is barge-in's job.
/// - A failed request ends only itself: complete sentences already received are spoken, the
///   unfinished tail of a failed reply is dropped, the TTS queue moves on.
/// - Barge-in (only with `interruptListening == false`, only while the agent speaks: audio
///   queued for playback or a TTS response in flight): playback cleared first, then the TTS
///   queue, the in-flight TTS and LLM requests cancelled, and the `interruption` webhook.
///   Caller speech while the agent is silent is ordinary turn-taking and changes nothing.
package struct PipelineTurnMachine: Sendable {
    package enum Event: Equatable, Sendable {
        /// The call started; `greeting` is `SYSTEM_MESSAGE`.
        case started(greeting: String?)
        /// A user turn from ASR (already assembled and cleaned).
        case transcript(String)
        /// A DTMF key, as its ASCII byte.
        case dtmf(UInt8)
        /// Reply text from the LLM (any chunk of it).
        case llmText(String)
        case llmEnded
        case llmFailed
        /// The TTS response head arrived (2xx): audio follows.
        case ttsStarted
        case ttsEnded
        case ttsFailed
        /// The voice-activity detector heard the caller start speaking.
        case bargeIn
        /// Playback started or stopped holding agent audio.
        case agentSpeaking(Bool)
    }

    package enum Action: Equatable, Sendable {
        case startLLM(body: [UInt8])
        case cancelLLM
        case startTTS(text: String)
        case cancelTTS
        case clearPlayback
        case webhookTranscript(role: TranscriptRole, text: String)
        case webhookInterruption
        case log(Note)
    }

    /// What is worth a log line; the backend words it.
    package enum Note: Equatable, Sendable {
        /// A user turn arrived while a reply was being generated or waiting for TTS: the LLM
        /// request (if any) was cancelled, `droppedSentences` of the old reply never spoken.
        case replySuperseded(droppedSentences: Int)
        case bargeIn(droppedSentences: Int, cancelledLLM: Bool, cancelledTTS: Bool)
        /// From the user turn to the head of the first TTS response of its reply.
        case replyLatency(nanoseconds: UInt64)
        /// The LLM request failed; `droppedTail` when an unfinished sentence was discarded.
        case llmFailed(droppedTail: Bool)
        case ttsFailed(text: String)
    }

    package let uuid: String
    package let interruptListening: Bool
    package private(set) var history = ConversationHistory()
    private var splitter = SentenceSplitter()
    /// Sentences waiting for their TTS request, in order.
    package private(set) var queue: [String] = []
    package private(set) var llmInFlight = false
    /// The sentence whose TTS request is in flight.
    package private(set) var ttsSentence: String?
    package var ttsInFlight: Bool { ttsSentence != nil }
    /// Playback holds agent audio (as the backend last reported).
    package private(set) var playing = false
    /// When the current user turn arrived, until its first TTS response starts.
    private var turnStartedAt: UInt64?

    package init(uuid: String, interruptListening: Bool) {
        self.uuid = uuid
        self.interruptListening = interruptListening
    }

    /// The agent is speaking: audio queued for playback, or a TTS response on its way.
    package var agentSpeaking: Bool { playing || ttsInFlight }

    package mutating func handle(_ event: Event, at now: UInt64) -> [Action] {
        var actions: [Action] = []
        switch event {
        case .started(let greeting):
            if let greeting, !greeting.isEmpty { queue.append(greeting) }
        case .transcript(let text):
            actions.append(.webhookTranscript(role: .user, text: text))
            userTurn(text, at: now, &actions)
        case .dtmf(let digit):
            userTurn(String(UnicodeScalar(digit)), at: now, &actions)
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
        case .ttsEnded:
            ttsSentence = nil
        case .ttsFailed:
            guard let sentence = ttsSentence else { break }
            ttsSentence = nil
            actions.append(.log(.ttsFailed(text: sentence)))
        case .bargeIn:
            guard !interruptListening, agentSpeaking else { break }
            let cancelledLLM = llmInFlight
            let cancelledTTS = ttsInFlight
            let dropped = queue.count
            actions.append(.clearPlayback)
            if cancelledTTS { actions.append(.cancelTTS) }
            if cancelledLLM { actions.append(.cancelLLM) }
            actions.append(.webhookInterruption)
            actions.append(.log(.bargeIn(droppedSentences: dropped, cancelledLLM: cancelledLLM, cancelledTTS: cancelledTTS)))
            queue.removeAll()
            splitter = SentenceSplitter()
            llmInFlight = false
            ttsSentence = nil
            playing = false
            turnStartedAt = nil
        case .agentSpeaking(let speaking):
            playing = speaking
        }
        pump(&actions)
        return actions
    }

    /// A user turn: history, then a new LLM request (cancelling a reply still in progress).
    private mutating func userTurn(_ text: String, at now: UInt64, _ actions: inout [Action]) {
        if llmInFlight { actions.append(.cancelLLM) }
        if llmInFlight || !queue.isEmpty { actions.append(.log(.replySuperseded(droppedSentences: queue.count))) }
        llmInFlight = false
        queue.removeAll()
        splitter = SentenceSplitter()
        history.addUser(text)
        actions.append(.startLLM(body: history.llmRequestBody(uuid: uuid, message: text)))
        llmInFlight = true
        turnStartedAt = now
    }

    /// Sends the next sentence to TTS when none is in flight.
    private mutating func pump(_ actions: inout [Action]) {
        guard !ttsInFlight, !queue.isEmpty else { return }
        let sentence = queue.removeFirst()
        history.addAssistant(sentence)
        ttsSentence = sentence
        actions.append(.webhookTranscript(role: .agent, text: sentence))
        actions.append(.startTTS(text: sentence))
    }
}
