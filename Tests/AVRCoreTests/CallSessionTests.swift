import Logging
import Testing
@testable import AVRCore
import AVRProtocol

/// A speech backend under the test's control: it records what the call hands it, and does
/// what the test says when caller audio arrives.
final class FakeSpeechBackend: SpeechBackend {
    weak var delegate: SpeechBackendDelegate?
    /// The backend it stands in for (what the call reports and times).
    var kind: SpeechBackendKind
    init(kind: SpeechBackendKind = .stsWebSocket) { self.kind = kind }
    /// Caller audio as the call handed it on (8 kHz PCM bytes).
    var received: [UInt8] = []
    var frames = 0
    var starts = 0
    var closes = 0
    /// Runs with each caller frame, after it is recorded.
    var onAudio: ((FakeSpeechBackend, UnsafeRawBufferPointer) -> Void)?
    /// What the call told of the line, in order: frames played (their sample count; 0 for a
    /// frame of silence) and silence where nothing went out (negative: that many samples).
    var line: [Int] = []

    func agentFramePlayed(_ samples: UnsafeBufferPointer<Int16>) {
        line.append(samples.contains { $0 != 0 } ? samples.count : 0)
    }

    func agentLineSilent(samples: Int) {
        line.append(-samples)
    }

    func start() {
        starts += 1
        delegate?.speechOpened()
    }

    func sendCallerAudio(_ pcm: UnsafeRawBufferPointer) {
        received.append(contentsOf: pcm)
        frames += 1
        onAudio?(self, pcm)
    }

    func sendDTMF(_ digit: UInt8) {}

    func close() {
        closes += 1
        delegate = nil
    }
}

/// `CallSession` on a real loop: an `AudioSocketServer` on 127.0.0.1, a client speaking
/// AudioSocket to it over TCP as Asterisk does, and a fake speech backend.
@Suite(.serialized) struct CallSessionTests {
    static let uuid = CallUUID(high: 0x9356_52e3_7c59_4edc, low: 0xb17f_9646_a9c2_a265)

    final class Lines: @unchecked Sendable { var all: [String] = [] }

    /// What one call left behind.
    struct Outcome {
        var lines: [String] = []
        var metrics = ""
        /// Messages the server sent, by kind, and the agent audio samples in order.
        var kinds: [AudioSocketKind] = []
        var samples: [Int16] = []
        var sawEnd = false
        func count(_ prefix: String) -> Int { lines.filter { $0.contains(prefix) }.count }
    }

    /// One 20 ms slin frame (320 bytes) whose samples are `start`, `start + 1`, …
    static func frame(from start: Int16) -> [UInt8] {
        var payload: [UInt8] = []
        for index in 0..<160 {
            let sample = UInt16(bitPattern: start &+ Int16(index))
            payload.append(UInt8(truncatingIfNeeded: sample))
            payload.append(UInt8(truncatingIfNeeded: sample >> 8))
        }
        var message: [UInt8] = []
        payload.withUnsafeBytes { AudioSocketEncoder.appendFrame(kind: .audio8kHz, payload: $0, to: &message) }
        return message
    }

    static func uuidMessage() -> [UInt8] {
        var bytes: [UInt8] = []
        for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: uuid.high >> UInt64(shift))) }
        for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: uuid.low >> UInt64(shift))) }
        var message: [UInt8] = []
        bytes.withUnsafeBytes { AudioSocketEncoder.appendFrame(kind: .uuid, payload: $0, to: &message) }
        return message
    }

    /// Runs one call: `script` gets the client connection (connected, UUID sent) and what
    /// the server has sent so far after each read; it returns true when the client is done
    /// and closes. The test ends when the server has closed its side.
    static func call(backend: FakeSpeechBackend, made failure: SpeechFailure? = nil, deadlineMs: UInt64 = 5_000, claimAnswersAfterMs: UInt64? = nil,
                     onLoop: (EventLoop) throws -> Void = { _ in },
                     afterConnect: @escaping (TCPStream) -> Void,
                     onMessages: @escaping (TCPStream, Outcome) -> Void = { _, _ in }) throws -> Outcome {
        let lines = Lines()
        let log = Logger(level: .debug, backend: Logging.Logger(label: "test") { _ in
            AVRLogHandler(format: .text) { lines.all.append(String(decoding: $0, as: UTF8.self)) }
        })
        let server = ServerMetrics()
        var outcome = Outcome()
        var made = 0
        try withLoop(deadlineMs: deadlineMs) { loop, done in
            try onLoop(loop)
            let context = try CallContext(loop: loop, configuration: Configuration(),
                                          registry: CallRegistry(timeToLive: 60_000, capacity: 16), webhooks: nil,
                                          ambient: nil, log: log, metrics: LoopMetrics(server: server, loopIndex: 0))
            context.backendFactory = { _, uuid, _ in
                #expect(uuid == Self.uuid)
                made += 1
                if let failure { return .failure(failure) }
                return .success(backend)
            }
            if let delay = claimAnswersAfterMs {
                // A claim that answers later, as the shared registry's does: no route.
                let answer = try Timer(loop: loop)
                context.routeLookupOverride = { _, completion in
                    answer.start(timeout: delay) {
                        answer.close()
                        completion(nil)
                    }
                    return .later
                }
            }
            let calls = try AudioSocketServer(host: "127.0.0.1", port: 0, context: context, reusePort: false,
                                              lifecycle: ServerLifecycle())
            let client = try TCPStream(loop: loop)
            var reader = AudioSocketFrameReader()
            client.connect(to: SocketAddress(numericHost: "127.0.0.1", port: calls.port)!) { error in
                #expect(error == nil)
                client.onRead = { bytes in
                    do throws(AudioSocketError) {
                        try reader.read(bytes) { frame, payload in
                            switch frame {
                            case .hangup: outcome.kinds.append(.hangup)
                            case .audio:
                                outcome.kinds.append(.audio8kHz)
                                // Payloads sit at odd offsets of the read: byte by byte.
                                for index in stride(from: 0, to: payload.count - 1, by: 2) {
                                    outcome.samples.append(Int16(bitPattern: UInt16(payload[index]) | UInt16(payload[index + 1]) << 8))
                                }
                            default: Issue.record("unexpected message from the server: \(frame)")
                            }
                            return true
                        }
                    } catch {
                        Issue.record("the server sent bytes that are no AudioSocket: \(error)")
                    }
                    onMessages(client, outcome)
                }
                client.onEnd = { _ in
                    outcome.sawEnd = true
                    client.close()
                    calls.close()
                    done()
                }
                client.startReading()
                client.write(Self.uuidMessage())
                afterConnect(client)
            }
        }
        #expect(made == 1)
        outcome.lines = lines.all
        outcome.metrics = server.registry.emitToString()
        return outcome
    }

    /// The value of the one series of `family` with exactly these labels (nil if none).
    static func series(_ outcome: Outcome, _ family: String, _ labels: [String: String]) -> String? {
        for line in outcome.metrics.split(separator: "\n") where line.hasPrefix(family + "{") {
            guard let close = line.firstIndex(of: "}") else { continue }
            let inner = line[line.index(after: line.firstIndex(of: "{")!)..<close]
            var have: [String: String] = [:]
            for pair in inner.split(separator: ",") {
                let parts = pair.split(separator: "=", maxSplits: 1)
                have[String(parts[0])] = String(parts[1].dropFirst().dropLast())
            }
            if have == labels { return String(line[line.index(after: close)...].dropFirst()) }
        }
        return nil
    }

    /// `avr_calls_ended_total{reason, backend}` is 1.
    static func endedCount(_ outcome: Outcome, _ reason: String, backend: String = "sts-websocket") -> Bool {
        series(outcome, "avr_calls_ended_total", ["reason": reason, "backend": backend]) == "1"
    }

    /// The call's quality line as key -> value.
    static func qualityFields(_ outcome: Outcome) -> [String: String] {
        guard let line = outcome.lines.first(where: { $0.contains("Call quality") }),
              let start = line.range(of: "Call quality ")?.upperBound else { return [:] }
        var fields: [String: String] = [:]
        for pair in line[start...].split(whereSeparator: { $0 == " " || $0 == "\n" }) {
            let parts = pair.split(separator: "=", maxSplits: 1)
            if parts.count == 2 { fields[String(parts[0])] = String(parts[1]) }
        }
        return fields
    }

    @Test func callerAudioEchoedThroughTheBackendPlaysBack() throws {
        let backend = FakeSpeechBackend()
        backend.onAudio = { backend, pcm in backend.delegate?.speechAgentAudio(pcm: pcm) }
        let sent = (0..<10).map { Int16(1000 + 160 * $0) }
        var hungUp = false
        let outcome = try Self.call(backend: backend, afterConnect: { client in
            for start in sent { client.write(Self.frame(from: start)) }
        }, onMessages: { client, outcome in
            // Once the echo of every frame has been played back, the caller hangs up.
            guard !hungUp, outcome.samples.filter({ $0 != 0 }).count >= 1600 else { return }
            hungUp = true
            client.write(AudioSocketEncoder.hangupMessage)
        })
        let expected = sent.flatMap { start in (0..<160).map { start + Int16($0) } }
        #expect(backend.received.count == 3200)
        #expect(outcome.samples.filter { $0 != 0 } == expected)
        #expect(backend.starts == 1)
        #expect(backend.closes == 1)
        #expect(!outcome.kinds.contains(.hangup), "the caller hung up: no hangup is sent back")
        #expect(outcome.count("Call ended: caller hung up") == 1)
        #expect(outcome.count("Call ended") == 1)
        #expect(Self.endedCount(outcome, "caller_hangup"))
    }

    /// Audio that arrives while the route is claimed is held, then handed to the backend in
    /// order; the backend answering from inside that hand-off (an echo) is played.
    @Test func audioHeldDuringADeferredClaimReachesTheBackendInOrder() throws {
        let backend = FakeSpeechBackend()
        backend.onAudio = { backend, pcm in backend.delegate?.speechAgentAudio(pcm: pcm) }
        let sent = (0..<5).map { Int16(3000 + 160 * $0) }
        var hungUp = false
        let outcome = try Self.call(backend: backend, claimAnswersAfterMs: 100, afterConnect: { client in
            for start in sent { client.write(Self.frame(from: start)) }
        }, onMessages: { client, outcome in
            guard !hungUp, outcome.samples.filter({ $0 != 0 }).count >= 800 else { return }
            hungUp = true
            client.write(AudioSocketEncoder.hangupMessage)
        })
        let expected = sent.flatMap { start in (0..<160).map { start + Int16($0) } }
        let received = stride(from: 0, to: backend.received.count - 1, by: 2).map {
            Int16(bitPattern: UInt16(backend.received[$0]) | UInt16(backend.received[$0 + 1]) << 8)
        }
        #expect(received == expected)
        #expect(outcome.samples.filter { $0 != 0 } == expected)
        // The line played (silence) while the claim was in flight, before any echo.
        #expect(outcome.samples.first == 0)
        #expect(outcome.count("Route claimed in") == 1)
        #expect(outcome.count("Call started from 127.0.0.1") == 1)
        #expect(outcome.count("(no prior POST /call)") == 1)
        #expect(outcome.count("Call ended: caller hung up") == 1)
        #expect(Self.endedCount(outcome, "caller_hangup"))
    }

    @Test func backendFailureEndsTheCallOnceAsFailed() throws {
        let backend = FakeSpeechBackend()
        backend.onAudio = { backend, _ in
            guard backend.frames == 2 else { return }
            backend.delegate?.speechClosed(.failed(.serviceError("test failure")))
        }
        let outcome = try Self.call(backend: backend, afterConnect: { client in
            for start in 0..<5 { client.write(Self.frame(from: Int16(start * 160 + 1))) }
        }, onMessages: { client, outcome in
            // Asterisk answers our hangup with its own: it must end nothing more.
            if outcome.kinds.last == .hangup { client.write(AudioSocketEncoder.hangupMessage) }
        })
        #expect(outcome.sawEnd)
        #expect(outcome.kinds.last == .hangup, "Asterisk is told to hang up")
        #expect(outcome.kinds.filter { $0 == .hangup }.count == 1)
        #expect(backend.frames == 2, "nothing reaches a backend that failed")
        #expect(backend.closes == 0, "a backend that closed itself is not closed again")
        #expect(outcome.count("STS connection failed: STS error: test failure") == 1)
        #expect(outcome.count("Call ended: STS failed: STS error: test failure") == 1)
        #expect(outcome.count("Call ended") == 1)
        #expect(outcome.count("Call quality") == 1)
        #expect(Self.endedCount(outcome, "sts_failed"))
        #expect(!Self.endedCount(outcome, "caller_hangup"))
        #expect(Self.qualityFields(outcome)["backend"] == "sts-websocket")
        #expect(Self.series(outcome, "avr_sts_connect_seconds_count", ["backend": "sts-websocket"]) == "1")
    }

    /// The call asks the backend what it is: a pipeline's failure is reported as the
    /// pipeline's (log line, detail, `backend` label), its connection timed as `asr`.
    @Test func pipelineFailureNamesThePipeline() throws {
        let backend = FakeSpeechBackend(kind: .pipeline)
        backend.onAudio = { backend, _ in
            guard backend.frames == 2 else { return }
            backend.delegate?.speechClosed(.failed(.serviceError("test failure")))
        }
        let outcome = try Self.call(backend: backend, afterConnect: { client in
            for start in 0..<5 { client.write(Self.frame(from: Int16(start * 160 + 1))) }
        }, onMessages: { client, outcome in
            if outcome.kinds.last == .hangup { client.write(AudioSocketEncoder.hangupMessage) }
        })
        #expect(outcome.sawEnd)
        #expect(outcome.lines.filter { $0.hasPrefix("[ERROR]") && $0.contains("] Speech pipeline failed: STS error: test failure") }.count == 1)
        #expect(outcome.count("STS connection failed") == 0)
        #expect(outcome.count("Call ended: Speech pipeline failed: STS error: test failure") == 1)
        #expect(Self.endedCount(outcome, "sts_failed", backend: "pipeline"))
        #expect(!Self.endedCount(outcome, "sts_failed"))
        let fields = Self.qualityFields(outcome)
        #expect(fields["backend"] == "pipeline")
        #expect(fields["asr_connect_ms"] != nil && fields["sts_connect_ms"] == nil)
        #expect(Self.series(outcome, "avr_sts_connect_seconds_count", ["backend": "pipeline"]) == "1")
        #expect(Self.series(outcome, "avr_sts_connect_seconds_count", ["backend": "sts-websocket"]) == "0")
    }

    /// A backend with nothing to connect to (the echo) has no connect time; its first audio
    /// is counted under its own label.
    @Test func echoKindTimesNoConnection() throws {
        let backend = FakeSpeechBackend(kind: .echo)
        backend.onAudio = { backend, pcm in backend.delegate?.speechAgentAudio(pcm: pcm) }
        let outcome = try Self.call(backend: backend, afterConnect: { client in
            for start in 0..<3 { client.write(Self.frame(from: Int16(start * 160 + 1))) }
            client.write(AudioSocketEncoder.hangupMessage)
        })
        #expect(outcome.sawEnd)
        #expect(Self.endedCount(outcome, "caller_hangup", backend: "echo"))
        let fields = Self.qualityFields(outcome)
        #expect(fields["backend"] == "echo")
        #expect(fields["sts_connect_ms"] == nil && fields["asr_connect_ms"] == nil && fields["first_audio_ms"] != nil)
        #expect(Self.series(outcome, "avr_sts_connect_seconds_count", ["backend": "echo"]) == nil, "no series for the echo")
        #expect(Self.series(outcome, "avr_sts_first_audio_seconds_count", ["backend": "echo"]) == "1")
        #expect(Self.series(outcome, "avr_sts_first_audio_seconds_count", ["backend": "sts-websocket"]) == "0")
    }

    /// No backend could be made (an unusable URL): the call fails with no backend named.
    @Test func backendThatCannotBeMadeEndsTheCallWithNone() throws {
        let backend = FakeSpeechBackend()
        let outcome = try Self.call(backend: backend, made: .unusableURL("ftp://x", .missingScheme), afterConnect: { _ in },
                                    onMessages: { client, outcome in
            if outcome.kinds.last == .hangup { client.write(AudioSocketEncoder.hangupMessage) }
        })
        #expect(outcome.sawEnd)
        #expect(outcome.kinds.last == .hangup)
        #expect(backend.starts == 0)
        #expect(outcome.count("Call ended: No speech backend: unusable STS URL ftp://x") == 1)
        #expect(Self.endedCount(outcome, "sts_failed", backend: "none"))
        #expect(Self.qualityFields(outcome)["backend"] == "none")
    }

    @Test func callerHangupEndsTheCallOnce() throws {
        let backend = FakeSpeechBackend()
        let outcome = try Self.call(backend: backend, afterConnect: { client in
            for start in 0..<3 { client.write(Self.frame(from: Int16(start * 160 + 1))) }
            client.write(AudioSocketEncoder.hangupMessage)
            // After the hangup: ignored, the call is over.
            client.write(Self.frame(from: 5000))
            client.write(AudioSocketEncoder.hangupMessage)
        })
        #expect(outcome.sawEnd)
        #expect(backend.closes == 1)
        #expect(backend.received.count <= 3 * 320)
        #expect(!outcome.kinds.contains(.hangup))
        #expect(outcome.count("Call ended: caller hung up") == 1)
        #expect(outcome.count("Call ended") == 1)
        #expect(Self.endedCount(outcome, "caller_hangup"))
    }

    @Test func agentEndingTheCallPlaysItsAudioOutThenHangsUp() throws {
        let backend = FakeSpeechBackend()
        // 200 ms of agent audio queued, then the agent ends the conversation.
        let agent = (0..<1600).map { Int16(2000 + $0) }
        backend.onAudio = { backend, _ in
            guard backend.frames == 1 else { return }
            let bytes = agent.flatMap { [UInt8(truncatingIfNeeded: UInt16(bitPattern: $0)), UInt8(truncatingIfNeeded: UInt16(bitPattern: $0) >> 8)] }
            bytes.withUnsafeBytes { backend.delegate?.speechAgentAudio(pcm: $0) }
            backend.delegate?.speechClosed(.finished)
        }
        let outcome = try Self.call(backend: backend, afterConnect: { client in
            for start in 0..<3 { client.write(Self.frame(from: Int16(start * 160 + 1))) }
        })
        #expect(outcome.sawEnd)
        #expect(outcome.samples.filter { $0 != 0 } == agent, "all of it played before the hangup")
        #expect(outcome.kinds.last == .hangup)
        #expect(backend.closes == 0)
        #expect(backend.frames == 1, "caller audio after the agent ended goes nowhere")
        #expect(outcome.count("Call ended: STS closed the connection") == 1)
        #expect(outcome.count("Call ended") == 1)
        #expect(Self.endedCount(outcome, "sts_closed"))
    }

    /// The agent's stream runs dry for longer than a tick while it is still streaming: the
    /// playout holds (sends nothing) and the line is silent. The backend is told each whole
    /// frame of that silence (the echo canceller's reference writes it), between the last frame
    /// before the hold and the first after it, and nothing while frames follow each other.
    @Test func aHeldSlotIsToldToTheBackendAsLineSilence() throws {
        let backend = FakeSpeechBackend()
        var loop: EventLoop?
        func agent(_ start: Int) -> [UInt8] {
            (0..<480).flatMap { index -> [UInt8] in
                let sample = UInt16(bitPattern: Int16(start + index))
                return [UInt8(truncatingIfNeeded: sample), UInt8(truncatingIfNeeded: sample >> 8)]
            }
        }
        backend.onAudio = { backend, _ in
            guard backend.frames == 1 else { return }
            // Three frames now, three more 90 ms later: the queue runs dry after 60 ms, within
            // the hold (what was queued and two frames), so the next two ticks hold.
            agent(1000).withUnsafeBytes { backend.delegate?.speechAgentAudio(pcm: $0) }
            let timer = try! Timer(loop: loop!)
            timer.start(timeout: 90) {
                timer.close()
                agent(2000).withUnsafeBytes { backend.delegate?.speechAgentAudio(pcm: $0) }
            }
        }
        var hungUp = false
        let outcome = try Self.call(backend: backend, onLoop: { loop = $0 }, afterConnect: { client in
            client.write(Self.frame(from: 1))
        }, onMessages: { client, outcome in
            guard !hungUp, outcome.samples.filter({ $0 != 0 }).count >= 960 else { return }
            hungUp = true
            client.write(AudioSocketEncoder.hangupMessage)
        })
        #expect(outcome.samples.filter { $0 != 0 }.count == 960)
        // The line as told: three frames, the held silence, three frames (before and after
        // them: silence frames of the idle line).
        let agentFrames = backend.line.enumerated().filter { $0.element > 0 }.map(\.offset)
        try #require(agentFrames.count == 6, "\(backend.line)")
        #expect(agentFrames[1] == agentFrames[0] + 1 && agentFrames[2] == agentFrames[1] + 1, "\(backend.line)")
        let between = backend.line[(agentFrames[2] + 1)..<agentFrames[3]]
        #expect(between.allSatisfy { $0 < 0 }, "between the bursts: \(Array(between))")
        let silent = -between.reduce(0, +)
        #expect(silent >= 160 && silent <= 320, "silence told: \(silent) samples")
        // No silence is told anywhere else: frames on the grid leave no hole.
        #expect(backend.line.filter { $0 < 0 }.count == between.count, "\(backend.line)")
    }
}
