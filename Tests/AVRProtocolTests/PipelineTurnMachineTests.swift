import Testing
@testable import AVRProtocol

/// Transcripts: one event in, the actions out. LLM bodies are compared with what
/// `ConversationHistory` makes from the expected history, so the tests state the history.
private struct Transcript {
    var machine = PipelineTurnMachine(uuid: "uuid-1", interruptListening: false)
    var expected = ConversationHistory()
    var now: UInt64 = 0

    init(interruptListening: Bool = false) {
        machine = PipelineTurnMachine(uuid: "uuid-1", interruptListening: interruptListening)
    }

    mutating func send(_ event: PipelineTurnMachine.Event, after milliseconds: UInt64 = 10) -> [PipelineTurnMachine.Action] {
        now += milliseconds * 1_000_000
        return machine.handle(event, at: now)
    }

    mutating func user(_ text: String) -> PipelineTurnMachine.Action {
        expected.addUser(text)
        return .startLLM(body: expected.llmRequestBody(uuid: "uuid-1", message: text))
    }

    mutating func spoken(_ text: String) -> [PipelineTurnMachine.Action] {
        expected.addAssistant(text)
        return [.webhookTranscript(role: .agent, text: text), .startTTS(text: text)]
    }
}

@Suite struct PipelineTurnMachineTests {
    @Test func greetingIsSpokenAndRecorded() {
        var t = Transcript()
        #expect(t.send(.started(greeting: "Hello, how can I help?")) == t.spoken("Hello, how can I help?"))
        #expect(t.machine.agentSpeaking)
        #expect(t.send(.ttsStarted).isEmpty)
        #expect(t.send(.ttsEnded).isEmpty)
        #expect(!t.machine.agentSpeaking)
        // The greeting is in the history the first LLM request carries.
        let actions = t.send(.transcript("yes please"))
        #expect(actions == [.webhookTranscript(role: .user, text: "yes please"), t.user("yes please")])
    }

    @Test func noGreetingNoRequest() {
        var t = Transcript()
        #expect(t.send(.started(greeting: nil)).isEmpty)
        #expect(t.send(.started(greeting: "")).isEmpty)
    }

    @Test func aWholeTurnWithSerialisedTTS() {
        var t = Transcript()
        _ = t.send(.started(greeting: nil))
        #expect(t.send(.transcript("what time is it")) == [.webhookTranscript(role: .user, text: "what time is it"),
                                                             t.user("what time is it")])
        // Two sentences arrive: the first goes to TTS, the second waits for it to end.
        #expect(t.send(.llmText("It is noon. It is")) == t.spoken("It is noon."))
        #expect(t.send(.llmText(" sunny too. Bye")).isEmpty)
        #expect(t.machine.queue == ["It is sunny too."])
        #expect(t.send(.ttsStarted, after: 250) == [.log(.replyLatency(nanoseconds: 270_000_000))])
        #expect(t.send(.llmEnded).isEmpty)
        #expect(t.machine.queue == ["It is sunny too.", "Bye"])
        #expect(t.send(.ttsEnded) == t.spoken("It is sunny too."))
        #expect(t.send(.ttsStarted).isEmpty)  // latency is logged once per turn
        #expect(t.send(.ttsEnded) == t.spoken("Bye"))
        #expect(t.send(.ttsEnded).isEmpty)
        #expect(!t.machine.ttsInFlight && t.machine.queue.isEmpty && !t.machine.llmInFlight)
        // The next turn's request carries the whole history.
        #expect(t.send(.transcript("thanks")) == [.webhookTranscript(role: .user, text: "thanks"), t.user("thanks")])
    }

    @Test func dtmfIsAUserMessageWithoutTranscriptWebhook() {
        var t = Transcript()
        #expect(t.send(.dtmf(UInt8(ascii: "5"))) == [t.user("5")])
        #expect(t.send(.dtmf(UInt8(ascii: "#"))) == [.cancelLLM, .log(.replySuperseded(droppedSentences: 0)), t.user("#")])
    }

    @Test func aNewTurnSupersedesTheReplyInProgress() {
        var t = Transcript()
        _ = t.send(.transcript("book a table"))
        _ = t.expected.addUser("book a table")
        #expect(t.send(.llmText("Sure. For how many? And when")) == t.spoken("Sure."))
        #expect(t.machine.queue == ["For how many?"])
        // The caller speaks again before the reply is done: the old reply is cancelled, its
        // unsent sentence dropped; the sentence being spoken plays on.
        let actions = t.send(.transcript("for two"))
        #expect(actions == [.webhookTranscript(role: .user, text: "for two"), .cancelLLM,
                            .log(.replySuperseded(droppedSentences: 1)), t.user("for two")])
        #expect(t.machine.ttsInFlight && t.machine.queue.isEmpty)
        // Text of the new reply waits for the TTS in flight.
        #expect(t.send(.llmText("Done. ")).isEmpty)
        #expect(t.send(.ttsEnded) == t.spoken("Done."))
    }

    @Test func lateEventsOfACancelledRequestAreIgnored() {
        var t = Transcript()
        _ = t.send(.transcript("hi"))
        _ = t.send(.llmEnded)
        #expect(t.send(.llmText("stale. ")).isEmpty)
        #expect(t.send(.llmEnded).isEmpty)
        #expect(t.send(.llmFailed).isEmpty)
        #expect(t.send(.ttsEnded).isEmpty)
        #expect(t.send(.ttsFailed).isEmpty)
    }

    @Test func failuresEndOnlyTheRequest() {
        var t = Transcript()
        _ = t.send(.transcript("hi"))
        _ = t.expected.addUser("hi")
        #expect(t.send(.llmText("Hello there. I was about to")) == t.spoken("Hello there."))
        #expect(t.send(.llmFailed) == [.log(.llmFailed(droppedTail: true))])
        #expect(t.send(.ttsFailed) == [.log(.ttsFailed(text: "Hello there."))])
        #expect(!t.machine.agentSpeaking)
        // The call goes on.
        #expect(t.send(.transcript("again")) == [.webhookTranscript(role: .user, text: "again"), t.user("again")])
        #expect(t.send(.llmText("One. Two. ")) == t.spoken("One."))
        #expect(t.send(.ttsFailed) == [.log(.ttsFailed(text: "One."))] + t.spoken("Two."))
    }

    @Test func bargeInWhileTheAgentSpeaks() {
        var t = Transcript()
        _ = t.send(.transcript("tell me a story"))
        _ = t.expected.addUser("tell me a story")
        #expect(t.send(.llmText("Once upon a time. There was a fox. It ")) == t.spoken("Once upon a time."))
        _ = t.send(.ttsStarted)
        #expect(t.send(.agentSpeaking(true)).isEmpty)
        let actions = t.send(.bargeIn)
        #expect(actions == [.clearPlayback, .cancelTTS, .cancelLLM, .webhookInterruption,
                            .log(.bargeIn(droppedSentences: 1, cancelledLLM: true, cancelledTTS: true))])
        #expect(!t.machine.agentSpeaking && !t.machine.llmInFlight && t.machine.queue.isEmpty)
        // Nothing of the old reply comes back; the next turn starts afresh with the history.
        #expect(t.send(.llmText("ran away. ")).isEmpty)
        #expect(t.send(.transcript("stop")) == [.webhookTranscript(role: .user, text: "stop"), t.user("stop")])
    }

    @Test func bargeInWithOnlyQueuedPlayback() {
        var t = Transcript()
        _ = t.send(.started(greeting: "Welcome."))
        _ = t.send(.ttsEnded)
        #expect(t.send(.agentSpeaking(true)).isEmpty)
        #expect(t.send(.bargeIn) == [.clearPlayback, .webhookInterruption,
                                     .log(.bargeIn(droppedSentences: 0, cancelledLLM: false, cancelledTTS: false))])
    }

    @Test func callerSpeechWhileTheAgentIsSilentIsNoBargeIn() {
        var t = Transcript()
        #expect(t.send(.bargeIn).isEmpty)
        _ = t.send(.transcript("hello"))
        // The LLM is thinking, nothing is playing: no interruption, the reply is kept.
        #expect(t.send(.bargeIn).isEmpty)
        #expect(t.machine.llmInFlight)
    }

    @Test func interruptListeningDisablesBargeIn() {
        var t = Transcript(interruptListening: true)
        _ = t.send(.started(greeting: "Welcome."))
        _ = t.send(.agentSpeaking(true))
        #expect(t.machine.agentSpeaking)
        #expect(t.send(.bargeIn).isEmpty)
        _ = t.send(.ttsEnded)
        #expect(t.machine.agentSpeaking)  // playback still holds audio
        _ = t.send(.agentSpeaking(false))
        #expect(!t.machine.agentSpeaking)
    }
}
