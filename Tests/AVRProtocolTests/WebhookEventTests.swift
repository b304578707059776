import Testing
@testable import AVRProtocol

@Suite struct WebhookEventTests {
    private func body(_ event: WebhookEvent) -> String {
        String(decoding: event.body(uuid: "u", timestampMs: 0), as: UTF8.self)
    }

    private func expected(_ type: String, _ payload: String) -> String {
        #"{"uuid":"u","type":""# + type + #"","timestamp":"1970-01-01T00:00:00.000Z","payload":"# + payload + "}"
    }

    @Test func everyEventHasItsTypeAndPayload() throws {
        let digit = try #require(DTMFDigit(ascii: UInt8(ascii: "#")))
        #expect(body(.callInitiated(payload: ["from": "2000", "n": 1])) == expected("call_initiated", #"{"from":"2000","n":1}"#))
        #expect(body(.callStarted) == expected("call_started", "{}"))
        #expect(body(.transcription(role: .agent, text: "Hi \"there\"")) == expected("transcription", #"{"role":"agent","text":"Hi \"there\""}"#))
        #expect(body(.transcription(role: .other("system"), text: "")) == expected("transcription", #"{"role":"system","text":""}"#))
        #expect(body(.interruption) == expected("interruption", "{}"))
        #expect(body(.dtmfDigit(digit)) == expected("dtmf_digit", ##"{"digit":"#"}"##))
        #expect(body(.callFailover(from: "ws://a:1/?x=", to: "ws://b:2/", reason: "ping_timeout", gapMilliseconds: 14))
            == expected("call_failover", #"{"from":"ws://a:1/?x=","to":"ws://b:2/","reason":"ping_timeout","gap_ms":14}"#))
    }

    @Test func lifecycleEventsAreTheReservedOnes() throws {
        let digit = try #require(DTMFDigit(ascii: UInt8(ascii: "1")))
        let summary = CallEndSummary(reason: .callerHangup, backend: .echo, detail: "", durationMilliseconds: 0)
        let lifecycle: [WebhookEvent] = [.callInitiated(payload: [:]), .callStarted, .callEnded(summary)]
        let perMessage: [WebhookEvent] = [.transcription(role: .user, text: "x"), .interruption, .dtmfDigit(digit)]
        #expect(lifecycle.allSatisfy { WebhookEnvelope.isLifecycle($0.type) })
        #expect(!perMessage.contains { WebhookEnvelope.isLifecycle($0.type) })
    }

    @Test func callEndedCarriesReasonDurationAndQuality() {
        var summary = CallEndSummary(reason: .backendFailed, backend: .stsHTTP, detail: "STS failed: connection refused",
                                     durationMilliseconds: 1234)
        summary.codec = "ULAW"
        summary.framesIn = 61
        summary.framesOut = 60
        summary.framesDropped = 2
        summary.framesLate = 5
        summary.maxQueueMilliseconds = 40
        summary.firstAudioMilliseconds = 7
        summary.playoutPromptFrames = 3
        summary.playoutCatchUpFrames = 1
        #expect(body(.callEnded(summary)) == expected("call_ended", #"{"reason":"sts_failed","backend":"sts-http","detail":"STS failed: connection refused","#
            + #""duration_ms":1234,"quality":{"codec":"ULAW","frames_in":61,"frames_out":60,"frames_dropped":2,"frames_late":5,"#
            + #""max_queue_ms":40,"sts_connect_ms":null,"first_audio_ms":7,"playout_added_max_ms":0,"playout_paid_back_ms":0,"#
            + #""playout_stalls":0,"playout_prompt_frames":3,"playout_short_frames":0,"playout_catch_up_frames":1}}"#))
    }

    /// A call that ended before any backend was made says so with `null`, not a guess.
    @Test func callEndedWithoutABackendCarriesNull() {
        let summary = CallEndSummary(reason: .callerClosed, backend: nil, detail: "caller closed the connection",
                                     durationMilliseconds: 3)
        guard case .object(let payload) = summary.webhookPayload else { Issue.record("not an object"); return }
        #expect(payload.members.map(\.key) == ["reason", "backend", "detail", "duration_ms", "quality"])
        #expect(payload.members[1].value == .null)
    }

    /// The backends' names in `call_ended` and the `backend` metric label, and the connection
    /// each one times (`<leg>_connect_ms`): a documented closed set, as the reasons are.
    @Test func backendKindsAreTheDocumentedSet() {
        #expect(SpeechBackendKind.allCases.map(\.rawValue) == ["sts-websocket", "sts-http", "pipeline", "echo"])
        #expect(SpeechBackendKind.allCases.map(\.connectLeg) == ["sts", "sts", "asr", nil])
        #expect(SpeechBackendKind.allCases.map(\.failureHeading)
            == ["STS connection failed", "STS connection failed", "Speech pipeline failed", "Echo backend failed"])
    }

    /// The documented closed set, exactly.
    @Test func endReasonsAreTheDocumentedSet() {
        #expect(CallEndReason.allCases.map(\.rawValue)
            == ["caller_hangup", "caller_closed", "caller_error", "protocol_error", "sts_closed", "sts_failed", "shutdown"])
    }

    @Test func qualityFiguresMarkWhatDidNotHappenAsAbsent() {
        var summary = CallEndSummary(reason: .callerClosed, backend: .pipeline, detail: "", durationMilliseconds: 0)
        summary.stsConnectMilliseconds = 12
        let figures = Dictionary(uniqueKeysWithValues: summary.qualityFigures.map { ($0.name, $0.value) })
        #expect(figures["sts_connect_ms"] == .number(12))
        #expect(figures["first_audio_ms"] == .absent)
        #expect(figures["codec"] == .text("none"))
        #expect(summary.qualityFigures.count == 14)
    }
}
