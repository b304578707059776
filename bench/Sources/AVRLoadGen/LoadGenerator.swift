import AVRBenchSupport
import AVRCore
import AVRProtocol
#if canImport(Glibc)
import Glibc
#endif

/// Places the calls at the ramp rate and sends every call's frames from ONE timer.
///
/// Calls are spread over 20 phase buckets 1 ms apart, each bucket keeping absolute 20 ms
/// deadlines on the monotonic clock, so N calls cost 50 × 20 timer wake-ups per second, not
/// 50 × N, and the harness's own lateness is measured (`send_lateness`): when it grows, the
/// harness, not the server, is the limit.
///
/// Fixed mode: N calls, each lasting `--duration`. Churn mode (`--churn MEAN`): N calls at a
/// time, each of random length; an ended call is replaced by a new one (after 0–100 ms, or
/// 1 s when the call failed or the server ended it) until `--duration` is over, when every
/// call still up stops sending and hangs up after the grace period.
final class LoadGenerator {
    static let interval: UInt64 = 20_000_000
    static let phaseCount = 20

    let loop: EventLoop
    let config: LoadConfig
    var total = CallResult()
    /// The WAV script (s16le), when playing one.
    let wavPCM: [UInt8]?
    /// What came back (s16le), when recording.
    private(set) var recording: [UInt8]?
    /// Scratch for re-encoding a G.711 caller's echoed stamp.
    var stampScratch: [UInt8] = []
    /// WebSocket ingress: one outgoing frame at a time (its capacity is reused).
    var webSocketOut: [UInt8] = []
    /// WebSocket ingress: masking keys from a xorshift generator. A client must mask with
    /// keys the server cannot predict; that protects proxies, not this bench, and the server's
    /// work does not depend on the key's value. Seeded per run.
    private var maskState: UInt64

    func nextMaskingKey() -> WebSocketMaskingKey {
        maskState ^= maskState << 13
        maskState ^= maskState >> 7
        maskState ^= maskState << 17
        let word = UInt32(truncatingIfNeeded: maskState >> 16)
        return WebSocketMaskingKey(UInt8(truncatingIfNeeded: word), UInt8(truncatingIfNeeded: word >> 8),
                                   UInt8(truncatingIfNeeded: word >> 16), UInt8(truncatingIfNeeded: word >> 24))
    }

    private var buckets: [[SimulatedCall]] = Array(repeating: [], count: phaseCount)
    private var deadlines: [UInt64] = []
    private let frameTimer: Timer
    private let rampTimer: Timer
    private let watchdog: Timer
    private let progressTimer: Timer
    private var started = 0
    private var active: [ObjectIdentifier: SimulatedCall] = [:]
    private var startTime: UInt64 = 0
    private var runEnd: UInt64 = .max
    private var stopping = false
    private let runTag: UInt32
    /// Churn: start times of replacement calls not yet placed.
    private var replacements: [UInt64] = []
    private var audio: [String: CallerAudio] = [:]
    private var callLines: [String] = []
    /// `--onsets-out`: one line per marked agent answer heard.
    private(set) var onsetLines: [String] = []
    /// Fault marking (SIGUSR1 … SIGUSR2 from the soak driver, around a fault that keeps the
    /// server from accepting): calls connecting then, or placed until 0.5 s after, are
    /// "affected" — their frames waited in the kernel's backlog, so their latency and any
    /// frames still queued at hangup are counted apart.
    private var faultActive = false
    private var faultGraceUntil: UInt64 = 0
    private var signalWatchers: [SignalWatcher] = []

    init(loop: EventLoop, config: LoadConfig) throws {
        self.loop = loop
        self.config = config
        frameTimer = try Timer(loop: loop)
        rampTimer = try Timer(loop: loop)
        watchdog = try Timer(loop: loop)
        progressTimer = try Timer(loop: loop)
        if let path = config.wavIn {
            wavPCM = try WAVFile.readPCM8k(path)
        } else {
            wavPCM = nil
        }
        if config.recordOut != nil { recording = [] }
        runTag = UInt32(truncatingIfNeeded: loop.nanoseconds ^ UInt64(getpid()))
        maskState = (loop.nanoseconds ^ UInt64(getpid()) << 32) | 1
    }

    var churn: Bool { config.churnMeanSeconds > 0 }

    var durationSeconds: Double {
        if let wavPCM { return Double(wavPCM.count) / 16000 }
        return config.durationSeconds
    }

    /// The frames for a call's codec and content (built once per pair).
    func audio(for codec: CallerCodec, callID: UInt32) -> CallerAudio {
        let content = config.content.resolved(callID: callID)
        let key = "\(codec.rawValue)/\(content.rawValue)"
        if let existing = audio[key] { return existing }
        let made = CallerAudio(codec: codec, content: content)
        audio[key] = made
        return made
    }

    func run() {
        startTime = loop.nanoseconds
        if churn { runEnd = startTime + UInt64(durationSeconds * 1e9) }
        deadlines = (0..<Self.phaseCount).map { startTime + UInt64($0) * (Self.interval / UInt64(Self.phaseCount)) }
        rampTimer.start(timeout: 0, repeat: 5) { [self] in ramp() }
        // Churn: a call may wait long for its `POST /call` answer while webhooks stall.
        let limit = Double(config.calls) / config.rampPerSecond + durationSeconds + config.graceSeconds + (churn ? 90 : 30)
        watchdog.start(timeout: UInt64(limit * 1000)) { [self] in
            printError("avr-loadgen: watchdog: \(active.count) calls still open; reporting anyway")
            for call in active.values { call.record(outcome: "watchdog") }
            report()
            exit(3)
        }
        if let begin = try? SignalWatcher(loop: loop, signal: SIGUSR1, { [self] _ in faultBegan() }),
           let end = try? SignalWatcher(loop: loop, signal: SIGUSR2, { [self] _ in faultEnded() }) {
            begin.unref()
            end.unref()
            signalWatchers = [begin, end]
        }
        if config.progressSeconds > 0 {
            let every = UInt64(config.progressSeconds * 1000)
            progressTimer.start(timeout: every, repeat: every) { [self] in progress() }
        }
        loop.run()
    }

    private func faultBegan() {
        faultActive = true
        for call in active.values where call.state == .posting || call.state == .connecting { call.faultAffected = true }
    }

    private func faultEnded() {
        faultActive = false
        faultGraceUntil = loop.nanoseconds + 500_000_000
    }

    private func startCall() {
        let id = UInt32(started)
        started += 1
        let codec = config.codec ?? CallerCodec.allCases[Int(id) % CallerCodec.allCases.count]
        let length: Double
        if churn {
            let mean = config.churnMeanSeconds
            let drawn = -mean * log(1 - Double.random(in: 0..<1))
            length = min(max(drawn, 0.1 * mean), 4 * mean)
        } else {
            length = durationSeconds
        }
        let call = SimulatedCall(id: id, runTag: runTag, codec: codec, audio: audio(for: codec, callID: id),
                                 lengthSeconds: length, generator: self)
        active[ObjectIdentifier(call)] = call
        call.faultAffected = faultActive || loop.nanoseconds < faultGraceUntil
        call.start()
    }

    private func ramp() {
        let now = loop.nanoseconds
        if now >= runEnd && !stopping { stopAll(now: now) }
        let elapsed = Double(now - startTime) / 1e9
        let initial = min(config.calls, Int(elapsed * config.rampPerSecond) + 1)
        while started < initial && !stopping { startCall() }
        if churn {
            var index = 0
            while index < replacements.count {
                if !stopping && replacements[index] <= now && now + 2_000_000_000 < runEnd {
                    replacements.swapAt(index, replacements.count - 1)
                    replacements.removeLast()
                    startCall()
                } else {
                    index += 1
                }
            }
            if stopping { replacements.removeAll() }
        } else if started == config.calls {
            rampTimer.stop()
        }
        checkComplete()
    }

    /// The run is over: calls that are up stop sending now (and hang up after the grace).
    private func stopAll(now: UInt64) {
        stopping = true
        for call in active.values where call.endSendingAt > now { call.endSendingAt = now }
    }

    // MARK: Scheduler

    func callStarted(_ call: SimulatedCall) {
        let bucket = Int(call.id) % Self.phaseCount
        call.bucket = bucket
        let now = loop.nanoseconds
        call.endSendingAt = min(now + UInt64(call.lengthSeconds * 1e9), runEnd)
        buckets[bucket].append(call)
        if !frameTimer.isActive { rearm(now: now) }
    }

    /// `early`: the call failed or the server ended it (its replacement waits a second).
    func callFinished(_ call: SimulatedCall, early: Bool) {
        if call.bucket >= 0 {
            buckets[call.bucket].removeAll { $0 === call }
            call.bucket = -1
        }
        active[ObjectIdentifier(call)] = nil
        if config.callsOut != nil { callLines.append(call.line(startTime: startTime)) }
        if churn && !stopping {
            let delay = early ? 1_000_000_000 : UInt64.random(in: 0...100_000_000)
            replacements.append(loop.nanoseconds + delay)
        }
        checkComplete()
    }

    private func checkComplete() {
        guard active.isEmpty else { return }
        if churn ? stopping : started == config.calls { complete() }
    }

    private func tick() {
        let now = loop.nanoseconds
        for bucket in 0..<Self.phaseCount {
            var served = 0
            while deadlines[bucket] <= now {
                serve(bucket: bucket, deadline: deadlines[bucket], now: now)
                deadlines[bucket] += Self.interval
                served += 1
                if served == 3 && deadlines[bucket] <= now {
                    // More than three frames late: resynchronise rather than burst.
                    deadlines[bucket] = now + Self.interval
                }
            }
        }
        rearm(now: now)
    }

    private func serve(bucket: Int, deadline: UInt64, now: UInt64) {
        // finish() removes the call from this bucket: iterate over a copy.
        for call in buckets[bucket] {
            switch call.state {
            case .sending:
                if now >= call.endSendingAt {
                    call.stopSending(now: now)
                    continue
                }
                total.sendLateness.add(now - deadline)
                call.sendFrame(now: now)
            case .draining:
                if now >= call.hangupAt { call.finish(sendHangup: true, outcome: "completed") }
            default:
                break
            }
        }
    }

    private func rearm(now: UInt64) {
        guard buckets.contains(where: { !$0.isEmpty }) else {
            frameTimer.stop()
            return
        }
        let next = deadlines.min()!
        let wait = next > now ? (next - now + 999_999) / 1_000_000 : 0
        frameTimer.start(timeout: wait) { [self] in tick() }
    }

    // MARK: Recording out

    func record(_ payload: UnsafeRawBufferPointer, codec: CallerCodec) {
        if payload.count == 160 && (codec == .ulaw || codec == .alaw) {
            G711.appendMuLawOrALaw(payload, aLaw: codec == .alaw, to: &recording!)
        } else {
            recording!.append(contentsOf: payload)
        }
    }

    // MARK: Progress and end

    private func progress() {
        let elapsed = Double(loop.nanoseconds - startTime) / 1e9
        printError("avr-loadgen: t=\(Int(elapsed))s active=\(active.count) started=\(started) completed=\(total.completed) "
            + "failed=\(total.failed) server_hangups=\(total.serverHangups) closed_early=\(total.closedEarly) "
            + "lost=\(total.lost) wrong=\(total.wrongCall) corrupted=\(total.corrupted)")
    }

    private func complete() {
        frameTimer.close()
        rampTimer.close()
        watchdog.close()
        progressTimer.close()
        for watcher in signalWatchers { watcher.close() }
        report()
    }

    /// A frame beginning with the bench TTS marker (`AVRT` + the turn as UInt32 LE): noted
    /// with the wall clock (microseconds), to be matched with the time the bench ASR sent
    /// that turn's transcript.
    func agentOnset(_ call: SimulatedCall, turn: UInt32) {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        onsetLines.append("\(call.uuidString) \(turn) \(Int64(now.tv_sec) * 1_000_000 + Int64(now.tv_nsec) / 1000)")
    }

    private func report() {
        let elapsed = Double(loop.nanoseconds - startTime) / 1e9
        if let path = config.recordOut, let recording {
            do { try WAVFile.writePCM8k(recording, to: path) } catch { printError("avr-loadgen: \(error)") }
        }
        if let path = config.callsOut {
            let text = callLines.joined(separator: "\n") + (callLines.isEmpty ? "" : "\n")
            if let file = fopen(path, "w") {
                fputs(text, file)
                fclose(file)
            } else {
                printError("avr-loadgen: cannot write \(path)")
            }
        }
        if let path = config.onsetsOut {
            let text = onsetLines.joined(separator: "\n") + (onsetLines.isEmpty ? "" : "\n")
            if let file = fopen(path, "w") {
                fputs(text, file)
                fclose(file)
            } else {
                printError("avr-loadgen: cannot write \(path)")
            }
        }
        total.started = started
        printLine(total.json(config: config, elapsedSeconds: elapsed))
    }
}

extension G711 {
    static func appendMuLawOrALaw(_ payload: UnsafeRawBufferPointer, aLaw: Bool, to output: inout [UInt8]) {
        if aLaw { appendALawAsLittleEndian(payload, to: &output) } else { appendMuLawAsLittleEndian(payload, to: &output) }
    }
}
