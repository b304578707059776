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
        t.expected.addUser("book a table")
        #expect(t.send(.llmText("Sure. For how many? And when")) == t.spoken("Sure."))
        #expect(t.machine.queue == ["For how many?"])
        // The caller speaks again while "Sure." is being synthesised: the confirmed turn
        // stops the agent as a barge-in does (playback cleared, requests cancelled, one
        // interruption), the unsent sentence is dropped.
        let actions = t.send(.transcript("for two"))
        #expect(actions == [.clearPlayback, .cancelTTS, .cancelLLM, .webhookInterruption,
                            .log(.speechSuperseded(droppedSentences: 1, cancelledLLM: true, cancelledTTS: true)),
                            .webhookTranscript(role: .user, text: "for two"), t.user("for two")])
        #expect(!t.machine.ttsInFlight && t.machine.queue.isEmpty && !t.machine.agentSpeaking)
        #expect(t.send(.llmText("Done. ")) == t.spoken("Done."))
    }

    @Test func aNewTurnWhileTheReplyIsOnlyBeingGeneratedInterruptsNothing() {
        var t = Transcript()
        _ = t.send(.transcript("book a table"))
        t.expected.addUser("book a table")
        #expect(t.send(.transcript("for two")) == [.cancelLLM, .log(.replySuperseded(droppedSentences: 0)),
                                                   .webhookTranscript(role: .user, text: "for two"), t.user("for two")])
    }

    // MARK: Preemptive turns

    /// The body of a speculative request: the confirmed history plus the tentative text,
    /// which does not enter the history.
    private func speculative(_ t: Transcript, _ text: String) -> PipelineTurnMachine.Action {
        var history = t.expected
        history.addUser(text)
        return .startLLM(body: history.llmRequestBody(uuid: "uuid-1", message: text))
    }

    @Test func theReplyIsPreparedOnTheFirstPieceAndHeldUntilConfirmed() {
        var t = Transcript()
        _ = t.send(.started(greeting: nil))
        // First piece: the LLM request starts at once; nothing is said or recorded yet.
        #expect(t.send(.tentativeTranscript("what time is it"), after: 1000) == [speculative(t, "what time is it")])
        #expect(t.machine.history.messages.isEmpty)
        // The first sentence goes to TTS, held; the rest waits for confirmation.
        #expect(t.send(.llmText("It is noon. It is"), after: 50) == [.startTTS(text: "It is noon.", held: true)])
        #expect(!t.machine.agentSpeaking)
        #expect(t.send(.llmText(" sunny too. Bye"), after: 10).isEmpty)
        #expect(t.send(.ttsStarted, after: 40) == [.log(.replyLatency(nanoseconds: 100_000_000))])
        #expect(t.send(.ttsEnded, after: 20).isEmpty)
        #expect(t.machine.queue == ["It is sunny too."])
        // 300 ms after the piece the debounce passes: the turn is confirmed, the held
        // sentence is recorded and released, the next one goes to TTS.
        t.expected.addUser("what time is it")
        t.expected.addAssistant("It is noon.")
        #expect(t.send(.transcript("what time is it"), after: 180)
            == [.webhookTranscript(role: .user, text: "what time is it"), .webhookTranscript(role: .agent, text: "It is noon."),
                .releaseHeldAudio, .log(.turnConfirmed(heldNanoseconds: 200_000_000))] + t.spoken("It is sunny too."))
        #expect(t.machine.history == t.expected)
        #expect(t.send(.llmEnded).isEmpty)
        #expect(t.send(.ttsEnded) == t.spoken("Bye"))
    }

    @Test func aModuleSlowerThanTheDebounceIsNotWaitedForTwice() {
        var t = Transcript()
        #expect(t.send(.tentativeTranscript("hello"), after: 1000) == [speculative(t, "hello")])
        // Confirmed before the LLM answered: nothing held, the reply plays as it comes.
        t.expected.addUser("hello")
        #expect(t.send(.transcript("hello"), after: 300)
            == [.webhookTranscript(role: .user, text: "hello"), .log(.turnConfirmed(heldNanoseconds: nil))])
        #expect(t.send(.llmText("Hi there. "), after: 100) == t.spoken("Hi there."))
    }

    @Test func aFurtherPieceRestartsTheSpeculationWithTheJoinedText() {
        var t = Transcript()
        _ = t.send(.started(greeting: nil))
        #expect(t.send(.tentativeTranscript("I want")) == [speculative(t, "I want")])
        #expect(t.send(.llmText("Sure. ")) == [.startTTS(text: "Sure.", held: true)])
        #expect(t.send(.tentativeTranscript("I want to book a table"), after: 200)
            == [.cancelLLM, .cancelTTS, .discardHeldAudio, .log(.speculationRestarted), speculative(t, "I want to book a table")])
        // An unchanged text changes nothing.
        #expect(t.send(.tentativeTranscript("I want to book a table")).isEmpty)
        // Late events of the cancelled requests are ignored.
        #expect(t.send(.transcript("I want to book a table"), after: 300)
            == [.webhookTranscript(role: .user, text: "I want to book a table"), .log(.turnConfirmed(heldNanoseconds: nil))])
        // Only the confirmed turn is in the history.
        #expect(t.machine.history.messages.map(\.content) == ["I want to book a table"])
    }

    @Test func confirmationWaitsForTheCallerToStopSpeaking() {
        var t = Transcript()
        #expect(t.send(.bargeIn, after: 1000).isEmpty)  // the agent is silent: only noted
        #expect(t.machine.callerSpeaking)
        #expect(t.send(.tentativeTranscript("hello")) == [speculative(t, "hello")])
        #expect(t.send(.llmText("Hi. ")) == [.startTTS(text: "Hi.", held: true)])
        #expect(t.send(.ttsStarted) == [.log(.replyLatency(nanoseconds: 20_000_000))])
        #expect(t.send(.transcript("hello"), after: 280).isEmpty)
        #expect(t.machine.deadline == t.now + PipelineTurnMachine.maximumConfirmationWaitNanoseconds)
        #expect(t.send(.tick, after: 100).isEmpty)
        t.expected.addUser("hello")
        t.expected.addAssistant("Hi.")
        #expect(t.send(.callerSilent, after: 100)
            == [.webhookTranscript(role: .user, text: "hello"), .webhookTranscript(role: .agent, text: "Hi."),
                .releaseHeldAudio, .log(.turnConfirmed(heldNanoseconds: 480_000_000))])
        #expect(t.machine.deadline == nil && t.machine.tentative == nil)
    }

    @Test func theWaitForASilentCallerIsBounded() {
        var t = Transcript()
        _ = t.send(.bargeIn)
        _ = t.send(.tentativeTranscript("hello"))
        #expect(t.send(.transcript("hello"), after: 300).isEmpty)
        let limit = PipelineTurnMachine.maximumConfirmationWaitNanoseconds / 1_000_000
        #expect(t.send(.tick, after: limit - 1).isEmpty)
        #expect(t.send(.tick, after: 1)
            == [.webhookTranscript(role: .user, text: "hello"), .log(.turnConfirmed(heldNanoseconds: nil))])
    }

    @Test func aPieceWhileWaitingForTheCallerJoinsTheTurn() {
        var t = Transcript()
        _ = t.send(.bargeIn)
        _ = t.send(.tentativeTranscript("I want"))
        #expect(t.send(.transcript("I want"), after: 300).isEmpty)
        // The assembler closed "I want"; its next turn begins with "a table".
        #expect(t.send(.tentativeTranscript("a table"), after: 200)
            == [.cancelLLM, .log(.speculationRestarted), speculative(t, "I want a table")])
        #expect(t.machine.deadline == nil)
        _ = t.send(.callerSilent)
        #expect(t.send(.transcript("a table"), after: 300)
            == [.webhookTranscript(role: .user, text: "I want a table"), .log(.turnConfirmed(heldNanoseconds: nil))])
    }

    @Test func aConfirmedTurnStopsTheAgentAndReleasesItsAnswer() {
        var t = Transcript()
        #expect(t.send(.started(greeting: "Welcome to the line.")) == t.spoken("Welcome to the line."))
        _ = t.send(.ttsStarted)
        _ = t.send(.agentSpeaking(true))
        // The caller speaks over the greeting (the detector is not fed here): its turn is
        // prepared while the greeting plays on; the TTS channel is busy with the greeting.
        #expect(t.send(.tentativeTranscript("stop")) == [speculative(t, "stop")])
        #expect(t.send(.llmText("Okay. ")).isEmpty)
        #expect(t.machine.agentSpeaking)
        // Confirmed: the greeting stops at once, one interruption; the answer follows.
        t.expected.addUser("stop")
        let actions = t.send(.transcript("stop"), after: 300)
        #expect(actions == [.clearPlayback, .cancelTTS, .webhookInterruption,
                            .log(.speechSuperseded(droppedSentences: 0, cancelledLLM: false, cancelledTTS: true)),
                            .webhookTranscript(role: .user, text: "stop"), .log(.turnConfirmed(heldNanoseconds: nil))]
                + t.spoken("Okay."))
    }

    @Test func aHeldAnswerReplacesTheQueuedPlaybackOfTheOldOne() {
        var t = Transcript()
        _ = t.send(.started(greeting: "Welcome."))
        _ = t.send(.ttsEnded)
        _ = t.send(.agentSpeaking(true))  // the greeting is still queued for playback
        _ = t.send(.tentativeTranscript("hi"))
        #expect(t.send(.llmText("Hello. ")) == [.startTTS(text: "Hello.", held: true)])
        _ = t.send(.ttsStarted)
        _ = t.send(.ttsEnded)
        t.expected.addUser("hi")
        t.expected.addAssistant("Hello.")
        #expect(t.send(.transcript("hi"), after: 300)
            == [.clearPlayback, .webhookInterruption,
                .log(.speechSuperseded(droppedSentences: 0, cancelledLLM: false, cancelledTTS: false)),
                .webhookTranscript(role: .user, text: "hi"), .webhookTranscript(role: .agent, text: "Hello."),
                .releaseHeldAudio, .log(.turnConfirmed(heldNanoseconds: 310_000_000))])
    }

    @Test func aBargeInBeforeConfirmationIsNotRepeated() {
        var t = Transcript()
        #expect(t.send(.started(greeting: "Welcome to the test line.")) == t.spoken("Welcome to the test line."))
        _ = t.send(.ttsStarted)
        _ = t.send(.agentSpeaking(true))
        #expect(t.send(.bargeIn) == [.clearPlayback, .cancelTTS, .webhookInterruption,
                                     .log(.bargeIn(droppedSentences: 0, cancelledLLM: false, cancelledTTS: true))])
        #expect(t.send(.tentativeTranscript("wait")) == [speculative(t, "wait")])
        // A second detector onset over the speculative reply stops nothing: it is not playing.
        #expect(t.send(.bargeIn).isEmpty)
        _ = t.send(.callerSilent)
        #expect(t.send(.transcript("wait"), after: 300)
            == [.webhookTranscript(role: .user, text: "wait"), .log(.turnConfirmed(heldNanoseconds: nil))])
    }

    @Test func heldAudioPastTheCapIsRequestedAgainAfterConfirmation() {
        var t = Transcript()
        _ = t.send(.tentativeTranscript("tell me everything"))
        #expect(t.send(.llmText("A very long sentence. Short. ")) == [.startTTS(text: "A very long sentence.", held: true)])
        #expect(t.send(.heldAudioFull) == [.cancelTTS, .discardHeldAudio, .log(.heldAudioFull(text: "A very long sentence."))])
        #expect(t.machine.queue == ["A very long sentence.", "Short."])
        t.expected.addUser("tell me everything")
        #expect(t.send(.transcript("tell me everything"), after: 300)
            == [.webhookTranscript(role: .user, text: "tell me everything"), .log(.turnConfirmed(heldNanoseconds: nil))]
                + t.spoken("A very long sentence."))
    }

    @Test func aHeldSentenceWhoseTTSFailedIsNotReleased() {
        var t = Transcript()
        _ = t.send(.tentativeTranscript("hi"))
        _ = t.send(.llmText("One. Two. "))
        #expect(t.send(.ttsFailed) == [.discardHeldAudio, .log(.ttsFailed(text: "One.")), .startTTS(text: "Two.", held: true)])
        t.expected.addUser("hi")
        t.expected.addAssistant("Two.")
        #expect(t.send(.transcript("hi"), after: 300)
            == [.webhookTranscript(role: .user, text: "hi"), .webhookTranscript(role: .agent, text: "Two."),
                .releaseHeldAudio, .log(.turnConfirmed(heldNanoseconds: nil))])
    }

    @Test func aDigitOverridesATentativeTurn() {
        var t = Transcript()
        _ = t.send(.tentativeTranscript("um"))
        _ = t.send(.llmText("Yes? "))
        #expect(t.send(.dtmf(UInt8(ascii: "1"))) == [.cancelLLM, .cancelTTS, .discardHeldAudio, t.user("1")])
        #expect(t.machine.tentative == nil)
        // The ASR text, once debounced, is a turn of its own.
        #expect(t.send(.transcript("um"), after: 300) == [.cancelLLM, .log(.replySuperseded(droppedSentences: 0)),
                                                          .webhookTranscript(role: .user, text: "um"), t.user("um")])
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
        t.expected.addUser("hi")
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
        t.expected.addUser("tell me a story")
        #expect(t.send(.llmText("Once upon a time. There was a fox. It ")) == t.spoken("Once upon a time."))
        _ = t.send(.ttsStarted)
        #expect(t.send(.agentSpeaking(true)).isEmpty)
        let actions = t.send(.bargeIn)
        #expect(actions == [.clearPlayback, .cancelTTS, .cancelLLM, .webhookInterruption,
                            .log(.bargeIn(droppedSentences: 1, cancelledLLM: true, cancelledTTS: true))])
        #expect(!t.machine.agentSpeaking && !t.machine.llmInFlight && t.machine.queue.isEmpty)
        // Nothing of the old reply comes back; the next turn starts afresh with the history.
        #expect(t.send(.llmText("ran away. ")).isEmpty)
        #expect(t.send(.callerSilent).isEmpty)
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
