import Testing
@testable import AVRCore
import AVRProtocol

/// `LineEchoCanceller` idles on a line that returns no echo and keeps cancelling on one that
/// does (docs/VAD.md, "Cost of the canceller").
@Suite struct LineEchoCancellerTests {
    /// Deterministic white noise of peak `amplitude`.
    struct Noise {
        var state: UInt32
        mutating func next(_ amplitude: Int32) -> Int16 {
            state = state &* 1_103_515_245 &+ 12_345
            return Int16(Int32(state >> 16 & 0x7fff) * 2 * amplitude / 0x7fff - amplitude)
        }
    }

    /// Runs `frames` frames: the agent speaks noise at about −15 dBFS throughout; the caller's line
    /// carries `echoGain` × the agent 60 ms late plus its own noise about 30 dB under the agent.
    /// Returns the canceller and, per frame, whether the output was the input untouched.
    static func run(frames: Int, echoGain: Float) -> (LineEchoCanceller, [Bool]) {
        let canceller = LineEchoCanceller()
        var agentNoise = Noise(state: 1), callerNoise = Noise(state: 99)
        let agent = (0..<(frames + 1) * 160).map { _ in agentNoise.next(10_000) }
        var untouched: [Bool] = []
        agent[0..<160].withUnsafeBufferPointer { canceller.played($0) }
        for frame in 0..<frames {
            agent[(frame + 1) * 160..<(frame + 2) * 160].withUnsafeBufferPointer { canceller.played($0) }
            let caller = (frame * 160..<(frame + 1) * 160).map { index -> Int16 in
                let echo = index >= 480 ? echoGain * Float(agent[index - 480]) : 0
                return Int16(echo) &+ callerNoise.next(300)
            }
            caller.withUnsafeBufferPointer { input in
                let output = canceller.process(input)
                untouched.append(output.baseAddress == input.baseAddress)
            }
        }
        return (canceller, untouched)
    }

    @Test func idlesOnALineWithoutEchoAndLooksAgain() throws {
        let judge = LineEchoCanceller.judgeFrames, probe = LineEchoCanceller.probeAfterFrames
        let (canceller, untouched) = Self.run(frames: 1_000 + 2 * probe + judge, echoGain: 0)
        // Ran until the path estimator had measured enough without finding an echo, to the end
        // of a judgement window, then let the line through.
        let first = try #require(untouched.firstIndex(of: true))
        try #require(first % judge == 0 && first >= LineEchoCanceller.idleAfterMeasuredFrames && first <= 1_000)
        #expect(untouched[first..<first + probe - 1].allSatisfy { $0 })
        // Looked again after `probeAfterFrames` idle frames, found nothing, idled again.
        let probed = first + probe - 1
        #expect(untouched[probed..<probed + judge].allSatisfy { !$0 })
        #expect(untouched[probed + judge..<probed + judge + probe - 1].allSatisfy { $0 })
        // Every idle period but the first was preceded by one judgement window.
        #expect(canceller.idlePeriods >= 2)
        #expect(!canceller.removedEcho)
        #expect(canceller.cancelledFrames == first + (canceller.idlePeriods - 1) * judge)
    }

    @Test func keepsCancellingAnEcho() {
        // ERL 15 dB (gain 0.178), the caller's own noise 30 dB under the agent.
        let (canceller, untouched) = Self.run(frames: 1_000, echoGain: 0.178)
        #expect(untouched.allSatisfy { !$0 })
        #expect(canceller.removedEcho)
        #expect(canceller.idlePeriods == 0)
        #expect(canceller.cancelledFrames == 1_000)
    }

    @Test func runsOnlyWhileTheAgentIsOnTheLineAndForTheTail() {
        // 50 frames of silence, 100 of agent audio, 100 of silence; the caller's line carries
        // its own noise only.
        let canceller = LineEchoCanceller()
        var agentNoise = Noise(state: 5), callerNoise = Noise(state: 7)
        let silence = [Int16](repeating: 0, count: 160)
        var ran: [Bool] = []
        for frame in 0..<250 {
            let agent = (50..<150).contains(frame + 1) ? (0..<160).map { _ in agentNoise.next(10_000) } : silence
            agent.withUnsafeBufferPointer { canceller.played($0) }
            let caller = (0..<160).map { _ in callerNoise.next(300) }
            caller.withUnsafeBufferPointer { input in ran.append(canceller.process(input).baseAddress != input.baseAddress) }
        }
        let first = ran.firstIndex(of: true), last = ran.lastIndex(of: true)
        // The reference for caller frame k is the frame played with it (one behind the newest).
        #expect(first == 50)
        // Runs while agent audio was on the line within the last `tailFrames` frames (400 ms).
        let tail = LineEchoCanceller.tailFrames - 1
        #expect(last == 149 + tail)
        #expect(ran[50...149 + tail].allSatisfy { $0 })
        #expect(canceller.cancelledFrames == 100 + tail)
    }
}
