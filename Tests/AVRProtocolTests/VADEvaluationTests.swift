#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing
@testable import AVRProtocol

/// The barge-in evaluation over espeak-ng mixes (docs/VAD.md): detection latency per mix and
/// false triggers per minute on echo + noise and on noise alone. Runs when `VAD_EVAL_DIR` names
/// a directory written by `Tests/vad/make_mixes.py` (`make vad-eval` does both).
@Suite struct VADEvaluationTests {
    struct Mix {
        let name: String
        let kind: String
        let onsetSample: Int
        let caller: [Int16]
        let agent: [Int16]
    }

    struct Outcome {
        var starts: [Int] = []  // analysis-frame index of each speechStarted
        var echoFrames = 0
        var frames = 0
    }

    static func load(_ directory: String) throws -> [Mix] {
        let manifest = try String(contentsOfFile: directory + "/manifest.tsv", encoding: .utf8)
        // The simulated phone lines ("line" kinds) are EchoCancellerEvaluationTests' (AVRCoreTests).
        return try manifest.split(separator: "\n").compactMap { line in
            let fields = line.split(separator: "\t").map(String.init)
            guard !fields[1].hasPrefix("line") else { return nil }
            func samples(_ suffix: String) throws -> [Int16] {
                let data = try Data(contentsOf: URL(fileURLWithPath: "\(directory)/\(fields[0]).\(suffix).raw"))
                return data.withUnsafeBytes { Array($0.bindMemory(to: Int16.self)) }.map { Int16(littleEndian: $0) }
            }
            return Mix(name: fields[0], kind: fields[1], onsetSample: Int(fields[2])!,
                       caller: try samples("caller"), agent: try samples("agent"))
        }
    }

    static func run(_ mix: Mix, configuration: VADConfiguration = VADConfiguration()) -> Outcome {
        var detector = BargeInDetector(configuration: configuration)
        var outcome = Outcome()
        let frames = mix.caller.count / 160
        for frame in 0..<frames {
            let range = frame * 160..<(frame + 1) * 160
            mix.agent[range].withUnsafeBufferPointer { detector.agentPlayed($0) }
            let event = mix.caller[range].withUnsafeBufferPointer { detector.callerFrame($0) }
            if detector.lastFrameWasEcho { outcome.echoFrames += 1 }
            if event == .speechStarted { outcome.starts.append(frame) }
        }
        outcome.frames = frames
        return outcome
    }

    @Test(.enabled(if: ProcessInfo.processInfo.environment["VAD_EVAL_DIR"] != nil))
    func evaluation() throws {
        try Self.evaluate(directory: ProcessInfo.processInfo.environment["VAD_EVAL_DIR"]!)
    }

    static func executable(_ name: String) -> Bool {
        (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":").contains {
            FileManager.default.isExecutableFile(atPath: "\($0)/\(name)")
        }
    }

    /// Without `VAD_EVAL_DIR`: the quick set (one echo delay, -40 dBFS white and pink noise,
    /// 20 s of echo-only and noise-only), generated now when espeak-ng and sox are installed
    /// (`make deps` installs them; CI has them).
    @Test(.enabled(if: ProcessInfo.processInfo.environment["VAD_EVAL_DIR"] == nil && executable("espeak-ng") && executable("sox")))
    func quickEvaluationWithEspeak() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("avr-vad-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("vad/make_mixes.py").path
        // posix_spawn rather than Foundation's Process, which leaks a weak-reference side table
        // (LeakSanitizer fails `make test` on it).
        let arguments = ["python3", script, directory, "--quick"]
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var pid: pid_t = 0
        #expect(posix_spawnp(&pid, "python3", nil, nil, &argv, environ) == 0)
        var status: Int32 = 0
        #expect(waitpid(pid, &status, 0) == pid)
        #expect(status == 0, "make_mixes.py exit status \(status)")
        try Self.evaluate(directory: directory)
    }

    static func evaluate(directory: String) throws {
        let mixes = try Self.load(directory)
        #expect(!mixes.isEmpty)
        // Speech mixes, grouped over the voices: latency (ms from onset to speechStarted).
        var groups: [String: (latencies: [Int], misses: Int, early: Int)] = [:]
        var order: [String] = []
        var falseTriggers: [String: (triggers: Int, minutes: Double)] = [:]
        var falseOrder: [String] = []
        for mix in mixes {
            let outcome = Self.run(mix)
            if mix.kind == "speech" {
                let group = String(mix.name[..<mix.name.range(of: "_v", options: .backwards)!.lowerBound])
                if groups[group] == nil { groups[group] = ([], 0, 0); order.append(group) }
                // A start before the onset is a false trigger on echo + noise.
                let early = outcome.starts.filter { ($0 + 1) * 160 <= mix.onsetSample }.count
                groups[group]!.early += early
                if let hit = outcome.starts.first(where: { ($0 + 1) * 160 > mix.onsetSample }) {
                    groups[group]!.latencies.append(((hit + 1) * 160 - mix.onsetSample) / 8)
                } else {
                    groups[group]!.misses += 1
                }
            } else {
                let key = mix.kind == "echo" ? "echo + noise" : "noise only"
                if falseTriggers[key] == nil { falseTriggers[key] = (0, 0); falseOrder.append(key) }
                falseTriggers[key]!.triggers += outcome.starts.count
                falseTriggers[key]!.minutes += Double(mix.caller.count) / 8000 / 60
                print("VAD-EVAL false \(mix.name): \(outcome.starts.count) triggers at frames \(outcome.starts), \(outcome.echoFrames) of \(outcome.frames) frames gated as echo")
            }
        }
        print("VAD-EVAL | mix (caller dBFS, echo delay, line noise) | latency ms, per voice | misses | early triggers |")
        print("VAD-EVAL |---|---|---|---|")
        for group in order {
            let g = groups[group]!
            print("VAD-EVAL | \(group) | \(g.latencies.map(String.init).joined(separator: ", ")) | \(g.misses) | \(g.early) |")
        }
        for key in falseOrder {
            let f = falseTriggers[key]!
            print("VAD-EVAL false triggers, \(key): \(f.triggers) in \(String(format: "%.1f", f.minutes)) min = \(String(format: "%.2f", Double(f.triggers) / f.minutes))/min")
        }
        // The bars (docs/VAD.md): speech at -10/-20 dBFS is caught within 300 ms; echo and line noise never trigger.
        for group in order where !group.hasPrefix("speech-30") {
            #expect(groups[group]!.misses == 0, "\(group) missed")
            #expect(groups[group]!.latencies.allSatisfy { $0 <= 300 }, "\(group) too slow")
        }
        for key in falseOrder { #expect(falseTriggers[key]!.triggers == 0, "\(key) triggered") }
        for group in order { #expect(groups[group]!.early == 0, "\(group) triggered before the onset") }
    }
}

extension VADEvaluationTests {
    /// `VAD_EVAL_SWEEP=1` with `VAD_EVAL_DIR`: the defaults' derivation. For a few settings,
    /// false triggers (all echo/noise audio and before each onset), misses, and the median /
    /// worst latency per caller level; and the per-frame rate of raw probabilities at or above
    /// the positive threshold on echo + noise and on noise.
    @Test(.enabled(if: ProcessInfo.processInfo.environment["VAD_EVAL_DIR"] != nil
                   && ProcessInfo.processInfo.environment["VAD_EVAL_SWEEP"] != nil))
    func sweep() throws {
        let mixes = try Self.load(ProcessInfo.processInfo.environment["VAD_EVAL_DIR"]!)
        var settings: [(String, VADConfiguration)] = []
        for (positive, negative) in [(Float(0.3), Float(0.15)), (0.5, 0.25), (0.7, 0.35), (0.9, 0.45)] {
            for minimum in [1, 3] {
                var configuration = VADConfiguration()
                configuration.positiveSpeechThreshold = positive
                configuration.negativeSpeechThreshold = negative
                configuration.minSpeechFrames = minimum
                settings.append(("pos \(positive) neg \(negative) min \(minimum)", configuration))
            }
        }
        for margin in [Float(6), 10, 18] {
            var configuration = VADConfiguration()
            configuration.echoMarginDecibels = margin
            settings.append(("echo margin \(margin) dB", configuration))
        }
        print("VAD-SWEEP | setting | false triggers | misses | latency ms -10 (median/max) | -20 | -30 |")
        for (label, configuration) in settings {
            var falseTriggers = 0, misses = 0
            var latencies: [String: [Int]] = [:]
            for mix in mixes {
                let outcome = Self.run(mix, configuration: configuration)
                if mix.kind != "speech" { falseTriggers += outcome.starts.count; continue }
                falseTriggers += outcome.starts.filter { ($0 + 1) * 160 <= mix.onsetSample }.count
                let level = String(mix.name.dropFirst(6).prefix(3))
                if let hit = outcome.starts.first(where: { ($0 + 1) * 160 > mix.onsetSample }) {
                    latencies[level, default: []].append(((hit + 1) * 160 - mix.onsetSample) / 8)
                } else {
                    misses += 1
                }
            }
            let cells = ["-10", "-20", "-30"].map { level -> String in
                let sorted = (latencies[level] ?? []).sorted()
                return sorted.isEmpty ? "-" : "\(sorted[sorted.count / 2]) / \(sorted.last!)"
            }
            print("VAD-SWEEP | \(label) | \(falseTriggers) | \(misses) | \(cells.joined(separator: " | ")) |")
        }
        for threshold in [Float(0.3), 0.5, 0.7, 0.9] {
            var echoHits = 0, echoFrames = 0, noiseHits = 0, noiseFrames = 0
            for mix in mixes where mix.kind != "speech" {
                var detector = BargeInDetector(configuration: VADConfiguration())
                for frame in 0..<(mix.caller.count / 160) {
                    let range = frame * 160..<(frame + 1) * 160
                    mix.agent[range].withUnsafeBufferPointer { detector.agentPlayed($0) }
                    _ = mix.caller[range].withUnsafeBufferPointer { detector.callerFrame($0) }
                    let hit = detector.lastRawProbability >= threshold ? 1 : 0
                    if mix.kind == "echo" { echoHits += hit; echoFrames += 1 } else { noiseHits += hit; noiseFrames += 1 }
                }
            }
            print("VAD-SWEEP raw p >= \(threshold): echo+noise frames \(String(format: "%.2f", 100 * Double(echoHits) / Double(echoFrames)))%, noise frames \(String(format: "%.3f", 100 * Double(noiseHits) / Double(noiseFrames)))%")
        }
    }
}
