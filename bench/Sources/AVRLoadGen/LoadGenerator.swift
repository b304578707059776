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

    private var calls: [SimulatedCall] = []
    private var buckets: [[SimulatedCall]] = Array(repeating: [], count: phaseCount)
    private var deadlines: [UInt64] = []
    private let frameTimer: Timer
    private let rampTimer: Timer
    private let watchdog: Timer
    private var started = 0
    private var finished = 0
    private var startTime: UInt64 = 0
    /// One outgoing message (header + payload template), stamped per frame.
    private var frame: [UInt8]

    init(loop: EventLoop, config: LoadConfig) throws {
        self.loop = loop
        self.config = config
        frameTimer = try Timer(loop: loop)
        rampTimer = try Timer(loop: loop)
        watchdog = try Timer(loop: loop)
        if let path = config.wavIn {
            wavPCM = try WAVFile.readPCM8k(path)
        } else {
            wavPCM = nil
        }
        if config.recordOut != nil { recording = [] }
        let payloadLength = 160 * config.codec.bytesPerSample
        frame = [0x10, UInt8(payloadLength >> 8), UInt8(payloadLength & 0xFF)]
        // A 400 Hz tone: 160 samples are exactly 8 periods, so every frame is the same.
        for index in 0..<160 {
            let sample = Int16(6000 * sin(2 * Double.pi * 400 * Double(index) / 8000))
            append(sample, to: &frame)
        }
        let runTag = UInt32(truncatingIfNeeded: loop.nanoseconds ^ UInt64(getpid()))
        calls = (0..<config.calls).map { SimulatedCall(id: UInt32($0), runTag: runTag, generator: self) }
    }

    private func append(_ sample: Int16, to output: inout [UInt8]) {
        switch config.codec {
        case .slin:
            output.append(UInt8(truncatingIfNeeded: sample))
            output.append(UInt8(truncatingIfNeeded: sample >> 8))
        case .ulaw: output.append(G711.muLaw(sample))
        case .alaw: output.append(G711.aLaw(sample))
        }
    }

    var durationSeconds: Double {
        if let wavPCM { return Double(wavPCM.count) / 16000 }
        return config.durationSeconds
    }

    func run() {
        startTime = loop.nanoseconds
        deadlines = (0..<Self.phaseCount).map { startTime + UInt64($0) * (Self.interval / UInt64(Self.phaseCount)) }
        let rampMilliseconds = UInt64(max(1, 1000 / config.rampPerSecond))
        rampTimer.start(timeout: 0, repeat: rampMilliseconds) { [self] in ramp() }
        let limit = Double(config.calls) / config.rampPerSecond + durationSeconds + config.graceSeconds + 30
        watchdog.start(timeout: UInt64(limit * 1000)) { [self] in
            printError("avr-loadgen: watchdog: \(config.calls - finished) calls still open; reporting anyway")
            report()
            exit(3)
        }
        loop.run()
    }

    private func ramp() {
        let elapsed = Double(loop.nanoseconds - startTime) / 1e9
        let due = min(calls.count, Int(elapsed * config.rampPerSecond) + 1)
        while started < due {
            calls[started].start()
            started += 1
        }
        if started == calls.count { rampTimer.stop() }
    }

    // MARK: Scheduler

    func callStarted(_ call: SimulatedCall) {
        let bucket = Int(call.id) % Self.phaseCount
        call.bucket = bucket
        let now = loop.nanoseconds
        call.endSendingAt = now + UInt64(durationSeconds * 1e9)
        buckets[bucket].append(call)
        if !frameTimer.isActive { rearm(now: now) }
    }

    func callFinished(_ call: SimulatedCall) {
        if call.bucket >= 0 {
            buckets[call.bucket].removeAll { $0 === call }
            call.bucket = -1
        }
        finished += 1
        if finished == calls.count { complete() }
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
        for call in buckets[bucket] {
            switch call.state {
            case .sending:
                if now >= call.endSendingAt {
                    call.stopSending(now: now)
                    continue
                }
                total.sendLateness.add(now - deadline)
                if let wavPCM { fillFromWAV(wavPCM, sequence: Int(call.sequence)) }
                call.sendFrame(&frame, now: now)
            case .draining:
                if now >= call.hangupAt { call.finish(sendHangup: true) }
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

    // MARK: WAV in, recording out

    private func fillFromWAV(_ pcm: [UInt8], sequence: Int) {
        frame.removeSubrange(AudioSocketEncoder.headerLength...)
        for index in 0..<160 {
            let offset = (sequence * 160 + index) * 2
            let sample = offset + 1 < pcm.count ? Int16(bitPattern: UInt16(pcm[offset]) | UInt16(pcm[offset + 1]) << 8) : 0
            append(sample, to: &frame)
        }
    }

    func record(_ payload: UnsafeRawBufferPointer) {
        switch config.codec {
        case .slin: recording!.append(contentsOf: payload)
        case .ulaw, .alaw:
            G711.appendMuLawOrALaw(payload, aLaw: config.codec == .alaw, to: &recording!)
        }
    }

    // MARK: End

    private func complete() {
        frameTimer.close()
        rampTimer.close()
        watchdog.close()
        report()
    }

    private func report() {
        let elapsed = Double(loop.nanoseconds - startTime) / 1e9
        if let path = config.recordOut, let recording {
            do { try WAVFile.writePCM8k(recording, to: path) } catch { printError("avr-loadgen: \(error)") }
        }
        printLine(total.json(config: config, elapsedSeconds: elapsed))
    }
}

extension G711 {
    static func appendMuLawOrALaw(_ payload: UnsafeRawBufferPointer, aLaw: Bool, to output: inout [UInt8]) {
        if aLaw { appendALawAsLittleEndian(payload, to: &output) } else { appendMuLawAsLittleEndian(payload, to: &output) }
    }
}
