import Testing
@testable import AVRCore
import AVRProtocol
#if canImport(Glibc)
import Glibc
#endif

/// What the call would see.
private final class RecordingDelegate: SpeechBackendDelegate {
    var opened = 0
    var agentAudio: [UInt8] = []
    var interrupted = 0
    var transcripts: [(TranscriptRole, String)] = []
    var errors: [SpeechFailure] = []
    var closed: [SpeechCloseReason] = []
    var queued = 0
    var onOpened: (() -> Void)?
    var onClosed: (() -> Void)?

    func speechOpened() { opened += 1; onOpened?() }
    func speechAgentAudio(pcm: UnsafeRawBufferPointer) { agentAudio.append(contentsOf: pcm) }
    func speechAgentAudio(base64: UnsafeRawBufferPointer) throws(Base64Error) {
        try Base64.decode(base64, appendingTo: &agentAudio)
    }
    func speechInterrupted() { interrupted += 1 }
    func speechTranscript(role: TranscriptRole, text: String) { transcripts.append((role, text)) }
    func speechError(_ error: SpeechFailure) { errors.append(error) }
    func speechClosed(_ reason: SpeechCloseReason) { closed.append(reason); onClosed?() }
    var agentQueuedSamples: Int { queued }
}

private func settings(asr: String, llm: String = "http://127.0.0.1:9/llm", tts: String = "http://127.0.0.1:9/tts") throws
    -> PipelineBackend.Settings {
    let urls = Configuration.PipelineURLs(asr: try EndpointURL.parse(asr), llm: try EndpointURL.parse(llm),
                                          tts: try EndpointURL.parse(tts))
    return PipelineBackend.Settings(urls: urls, configuration: Configuration())
}

@Suite struct PipelineBackendTests {
    /// Caller frames reach the ASR module as chunks, byte-exact, and the stream ends with the
    /// call. `PIPELINE_TEST_FRAMES` (default 500) sets the number of frames: run under valgrind
    /// at two counts, the difference in allocations is what the frames cost (expected: 0).
    @Test func callerAudioStreamsToASR() throws {
        let frames = Int(getenv("PIPELINE_TEST_FRAMES").map { String(cString: $0) } ?? "") ?? 500
        var keep: [AnyObject] = []
        let delegate = RecordingDelegate()
        var body: [UInt8] = []
        var sawEnd = false
        try withLoop(deadlineMs: 20_000) { loop, done in
            let listener = try TCPListener(loop: loop, host: "127.0.0.1", port: 0)
            var received: [UInt8] = []
            listener.onConnection = { stream in
                keep.append(stream)
                stream.onRead = { received.append(contentsOf: $0) }
                stream.onEnd = { _ in
                    if let headEnd = received.firstRange(of: Array("\r\n\r\n".utf8)) {
                        body = Array(received[headEnd.upperBound...])
                    }
                    sawEnd = true
                    stream.close()
                    listener.close()
                    done()
                }
                stream.startReading()
            }
            let backend = PipelineBackend(loop: loop, settings: try settings(asr: "http://127.0.0.1:\(listener.port)/asr"),
                                          uuid: "u-1", log: Logger(level: .error), tls: nil)
            keep.append(backend)
            backend.delegate = delegate
            var frame = [UInt8](repeating: 0, count: 320)
            delegate.onOpened = {
                for index in 0..<frames {
                    for i in 0..<320 { frame[i] = UInt8(truncatingIfNeeded: index &+ i) }
                    frame.withUnsafeBytes { backend.sendCallerAudio($0) }
                }
                backend.close()
            }
            backend.start()
        }
        #expect(sawEnd)
        #expect(delegate.opened == 1 && delegate.closed.isEmpty && delegate.errors.isEmpty)
        // The chunked body: "140\r\n" + 320 bytes + "\r\n" per frame, then "0\r\n\r\n".
        var expected: [UInt8] = []
        for index in 0..<frames {
            expected.append(contentsOf: "140\r\n".utf8)
            for i in 0..<320 { expected.append(UInt8(truncatingIfNeeded: index &+ i)) }
            expected.append(contentsOf: "\r\n".utf8)
        }
        expected.append(contentsOf: "0\r\n\r\n".utf8)
        #expect(body.count == expected.count)
        #expect(body == expected)
    }

    @Test func unreachableASRClosesWithAFailure() throws {
        var keep: [AnyObject] = []
        let delegate = RecordingDelegate()
        try withLoop { loop, done in
            let probe = try TCPListener(loop: loop, host: "127.0.0.1", port: 0)
            let port = probe.port
            probe.close()
            let backend = PipelineBackend(loop: loop, settings: try settings(asr: "http://127.0.0.1:\(port)/asr"),
                                          uuid: "u-2", log: Logger(level: .error), tls: nil)
            keep.append(backend)
            backend.delegate = delegate
            delegate.onClosed = { done() }
            backend.start()
        }
        #expect(delegate.opened == 0)
        guard case .failed(.pipeline(let failure))? = delegate.closed.first, failure.module == .asr,
              case .request(.connect) = failure.failure else {
            Issue.record("expected an ASR connect failure, got \(delegate.closed)")
            return
        }
        #expect(delegate.closed.count == 1)
    }

    /// An ASR answer becomes one LLM request after the debounce; an ASR response that ends
    /// does not end the call: the stream is reopened.
    @Test func transcriptGoesToTheLLMAndAnEndedASRStreamIsReopened() throws {
        var keep: [AnyObject] = []
        let delegate = RecordingDelegate()
        var asrConnections = 0
        var llmRequest = ""
        try withLoop(deadlineMs: 10_000) { loop, done in
            let asr = try TCPListener(loop: loop, host: "127.0.0.1", port: 0)
            let llm = try TCPListener(loop: loop, host: "127.0.0.1", port: 0)
            var finished = false
            func finish() {
                guard !finished, asrConnections >= 2, !llmRequest.isEmpty else { return }
                finished = true
                (keep.first as? PipelineBackend)?.close()
                asr.close()
                llm.close()
                done()
            }
            asr.onConnection = { stream in
                asrConnections += 1
                keep.append(stream)
                stream.onRead = { _ in }
                stream.onEnd = { _ in stream.close() }
                stream.startReading()
                if asrConnections == 1 {
                    stream.write(Array("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nB\r\nHello <end>\n\r\n0\r\n\r\n".utf8))
                }
                finish()
            }
            llm.onConnection = { stream in
                keep.append(stream)
                var received: [UInt8] = []
                stream.onRead = { bytes in
                    received.append(contentsOf: bytes)
                    llmRequest = String(decoding: received, as: UTF8.self)
                    guard llmRequest.hasSuffix("}") else { return }
                    stream.close()
                    finish()
                }
                stream.onEnd = { _ in stream.close() }
                stream.startReading()
            }
            let backend = PipelineBackend(loop: loop,
                                          settings: try settings(asr: "http://127.0.0.1:\(asr.port)/asr",
                                                                 llm: "http://127.0.0.1:\(llm.port)/llm"),
                                          uuid: "u-3", log: Logger(level: .error), tls: nil)
            keep.insert(backend, at: 0)
            backend.delegate = delegate
            backend.start()
        }
        #expect(asrConnections >= 2)
        #expect(llmRequest.contains("\r\nX-UUID: u-3\r\n"))
        #expect(llmRequest.contains("\"message\":\"Hello\""))
        #expect(delegate.transcripts.map { "\($0.0):\($0.1)" } == ["user:Hello"])
        #expect(delegate.closed.isEmpty)
    }
}
