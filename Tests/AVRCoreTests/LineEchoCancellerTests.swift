#if canImport(Glibc)
import Glibc
#endif
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

    /// Speech-like agent audio: white noise under a syllable-rate envelope (about 4 Hz, varying
    /// depth) with a pause of 0.3 s every 2 s, peaking near −12 dBFS. Deterministic.
    static func speechLike(frames: Int, seed: UInt32) -> [Int16] {
        var noise = Noise(state: seed)
        return (0..<frames * 160).map { index in
            let t = Float(index) / 8000
            let wander: Float = 0.7 * sinf(2 * Float.pi * 0.9 * t)
            let syllable: Float = 0.5 - 0.5 * cosf(2 * Float.pi * 4.1 * t + wander)
            let pause: Float = t.truncatingRemainder(dividingBy: 2) > 1.7 ? 0 : 1
            return Int16(Float(noise.next(10_000)) * (0.1 + 0.9 * syllable) * pause)
        }
    }

    struct LineRun {
        var canceller = LineEchoCanceller()
        /// Per frame: caller power in and out, and whether the canceller was converging.
        var powerIn: [Float] = []
        var powerOut: [Float] = []
        var converging: [Bool] = []
        var lineLoss: [Float?] = []
        /// Per frame: the canceller's resets and moves of the reference keeping the filter so far.
        var resets: [Int] = []
        var realignments: [Int] = []
    }

    /// The agent at `speechLike` levels; the caller's line carries the agent at ERL 10 dB,
    /// `delay(frame)` samples late, plus noise 45 dB under the agent's peak.
    static func run(frames: Int, delay: (Int) -> Int) -> LineRun {
        var result = LineRun()
        let agent = speechLike(frames: frames + 1, seed: 3)
        var callerNoise = Noise(state: 17)
        agent[0..<160].withUnsafeBufferPointer { result.canceller.played($0) }
        for frame in 0..<frames {
            agent[(frame + 1) * 160..<(frame + 2) * 160].withUnsafeBufferPointer { result.canceller.played($0) }
            let lag = delay(frame)
            let caller = (frame * 160..<(frame + 1) * 160).map { index -> Int16 in
                let echo = index >= lag ? 0.316 * Float(agent[index - lag]) : 0
                return Int16(echo) &+ callerNoise.next(60)
            }
            caller.withUnsafeBufferPointer { input in
                let output = result.canceller.process(input)
                result.powerIn.append(BargeInDetector.meanSquare(input))
                result.powerOut.append(BargeInDetector.meanSquare(output))
            }
            result.converging.append(result.canceller.distrusted)
            result.lineLoss.append(result.canceller.unconvergedLineLoss?.decibels)
            result.resets.append(result.canceller.resets)
            result.realignments.append(result.canceller.realignments)
        }
        return result
    }

    /// Echo removed over `frames` (dB).
    static func removed(_ run: LineRun, _ frames: Range<Int>) -> Float {
        EchoPathEstimator.decibels(power: run.powerIn[frames].reduce(0, +))
            - EchoPathEstimator.decibels(power: run.powerOut[frames].reduce(0, +))
    }

    /// The echo's delay is 60 ms, then steps to 100 ms (the line's buffer grew, or the
    /// reference slipped against the line). At 60 ms the echo sits in the filter's last block
    /// (the reference undelayed): out of the old rule's reach, which started the filter
    /// again; the filter has it, so it is kept. At 100 ms it is out of the filter's span: the
    /// reference moves by the step (once the path estimator sees it), keeping the filter, and
    /// nothing is reset or distrusted.
    @Test func aDelayStepMovesTheReferenceAndKeepsTheFilter() throws {
        let step = 600
        let run = Self.run(frames: 1_200) { $0 < step ? 480 : 800 }
        let canceller = run.canceller
        #expect(canceller.resets == 0)
        #expect(run.realignments[step - 1] == 0)
        let before = Self.removed(run, step - 200..<step)
        #expect(before > 20, "removed before the step: \(before) dB")
        // Moved after the step, so that the echo is in the filter's last block again.
        #expect(canceller.realignments >= 1)
        #expect(canceller.bulkDelayFrames == 2)
        let moved = try #require(run.realignments.firstIndex(of: canceller.realignments))
        #expect(moved < step + 200, "moved at frame \(moved)")
        // The gate is told to distrust the filter only between the step and the move (the echo
        // moved away from the filter), and no longer once the filter removes it again.
        #expect(run.converging[..<step].allSatisfy { !$0 })
        #expect(run.converging[(moved + 50)...].allSatisfy { !$0 })
        let after = Self.removed(run, moved + 50..<moved + 150)
        #expect(after > before - 6, "removed after the move: \(after) dB")
    }

    /// The echo moves from 60 to 260 ms: out of the filter's span, for longer than
    /// `resetAfterFrames`. From when the path estimator sees the echo out of reach (the filter
    /// then removes next to nothing) until the restarted filter removes the echo again, the
    /// gate is given the raw line's measured loss (10 dB).
    @Test func aMoveOutOfTheSpanStartsTheFilterAgainAndTellsTheGate() throws {
        let step = 600
        let run = Self.run(frames: 1_400) { $0 < step ? 480 : 2_080 }
        let canceller = run.canceller
        #expect(run.resets[step - 1] == 0)
        #expect(canceller.resets == 1)
        #expect(canceller.realignments == run.realignments[step - 1])
        #expect(canceller.bulkDelayFrames == 12)
        #expect(run.converging[..<step].allSatisfy { !$0 })
        let start = try #require(run.converging.firstIndex(of: true))
        #expect(start < step + 150, "distrusted from frame \(start)")
        let loss = try #require(run.lineLoss[start])
        #expect(abs(loss - 10) < 2, "raw line loss \(loss) dB")
        // Distrusted through the reset, converged again within 3 s of it, removing the echo.
        let reset = try #require(run.resets.firstIndex(of: 1))
        #expect(run.converging[start..<reset].allSatisfy { $0 })
        let end = try #require(run.converging[reset...].firstIndex(of: false))
        #expect(end - reset < 150, "converging for \(end - reset) frames after the reset")
        #expect(run.converging[end...].allSatisfy { !$0 })
        #expect(Self.removed(run, end..<end + 100) > 10)
    }
}
