/// Decides what a call's `0x10` payloads hold — signed linear, μ-law or A-law — because
/// `Dial(AudioSocket/...)` passes the caller's native codec without saying so.
///
/// ## Physics first
///
/// slin against G.711 is not a question about the sound. slin is 16,000 bytes a second and
/// G.711 8,000, and Asterisk sends one message per frame: 320 bytes every 20 ms is slin, 160 is
/// G.711, whatever either sounds like (loud noise, a clipped sawtooth, modem data). So the first
/// frame's size decides (``slinMinimumBytes``; an odd size cannot be 16-bit samples), and the
/// byte rate checks it: once ``rateWindow`` of steady arrivals (no gap over ``maximumGap``) has
/// been seen, a rate that contradicts the size decision (a G.711 leg packetised at 40 ms sends
/// 320-byte frames at 8,000 bytes a second; slin at 10 ms sends 160-byte ones at 16,000)
/// corrects it, once. Short slin frames (276, 298 bytes under load) stay slin.
///
/// ## μ-law against A-law by content
///
/// Only the two G.711 laws need the content. Each reading of the payloads is scored
///
///     score = (whiteness + 0.01) × (rms + 16)^(1/16)
///
/// `whiteness` = e₂ / r₀ is the residual of an order-2 linear predictor (Levinson on the
/// autocorrelation r₀, r₁, r₂) over the frames seen. The right reading is sound: predictable
/// (tones ≈ 0, speech 0.05–0.6). The wrong reading maps each magnitude code through
/// `m ↦ m ⊕ 0x2A`, which swaps segments (0↔2, 1↔3, 4↔6, 5↔7) and scrambles mantissas, so
/// sound turns rough. The level term, deliberately weak, settles what predictability cannot:
/// digital silence (both readings constant; the wrong one is ±848 or ±716, not 0). A strong
/// level term (the earlier `rms × (whiteness + 0.1)`) fails for loud content, whose wrong
/// reading is *quieter* (segments 6–7 land on 4–5): full-scale tones, sawtooths and clipped
/// speech were misread; with a fourth root the sawtooth still was, from some offsets. Measured
/// offline on silence, synthetic voice at −40…0 dBFS, clipped voice, two full-scale sawtooths,
/// a clipped sine, tones 300–3,900 Hz at −40…0 dBFS and noise at −30…−12 dBFS, from seven
/// offsets each, this score picks the right law on one frame, on two and on 25 in every case.
/// It cannot for white noise near full scale or random bytes: both readings are white noise
/// there, and either one sends noise to the STS.
///
/// The first G.711 frame decides when one reading beats the other by ``earlyRatio``; otherwise
/// it is held and the second frame decides whatever the margin (ties go to μ-law, the common
/// law outside Europe). No frame after the first is ever held.
///
/// A call can begin with what no score can read — loud noise, hiss, random bytes — and speak
/// later, so the law stays open to evidence: each later frame, scored on its own, votes for a
/// law when that reading beats the other by ``voteRatio`` (1.5). Offline, on the signals
/// above, 2 s of each, no frame ever voted for the wrong law, and no noise frame voted at
/// all; speech and tones vote for the right law in almost every frame. ``settlingVotes`` for
/// the chosen law settle the question; ``correctingVotes`` more for the other law than for
/// the chosen one correct it, once. Voting stops after ``votingFrames`` (10 s).
/// The two corrections are independent: a 40 ms μ-law leg that opens with loud noise can be
/// corrected from slin to a law by the byte rate and then to the other law by votes — at most
/// one correction of each kind, and at most one decision per frame.
/// (Seen on a real Asterisk: a μ-law caller whose first second was loud noise was decided
/// A-law, and kept it through the speech that followed, before votes existed.)
package struct CodecDetector: Sendable {
    /// What to do with the frame just observed.
    package enum Step: Equatable, Sendable {
        /// Keep it: the decision comes with the next frame (only ever the first frame).
        case hold
        /// Decode it (and any held frame) with this codec.
        case use(AudioCodec)
    }

    /// Why the codec is what it is, for the log line.
    package enum Evidence: Equatable, Sendable {
        /// The first frame's size (odd: not 16-bit samples).
        case frameSize(Int)
        /// The byte rate over steady arrivals, bytes per second.
        case byteRate(Int)
        /// Which G.711 reading sounds like sound.
        case content
    }

    /// A decision or a correction, reported once by ``observe(_:at:)`` through ``takeEvent()``.
    package struct Event: Equatable, Sendable {
        package var codec: AudioCodec
        package var previous: AudioCodec?
        package var evidence: Evidence
    }

    /// Payloads of at least this many (even) bytes are slin: halfway between 160 (G.711, 20 ms)
    /// and 320 (slin, 20 ms), below Asterisk's short slin frames.
    package var slinMinimumBytes = 240
    /// Steady arrivals needed before the byte rate may correct the size decision, ns.
    package var rateWindow: UInt64 = 1_000_000_000
    /// A gap longer than this restarts the rate window (DTMF, a stalled PBX), ns.
    package var maximumGap: UInt64 = 200_000_000
    /// Bytes per second above which a stream is slin (16,000) rather than G.711 (8,000).
    package var slinMinimumRate = 12_000
    /// A first G.711 frame decides μ/A alone when one score is this much lower (digital
    /// silence, the thinnest margin among real signals, gives 1.26–1.28).
    package var earlyRatio = 1.2
    /// A frame votes for the law whose reading scores this much lower than the other's.
    package var voteRatio = 1.5
    /// Votes for the chosen law that end the voting.
    package var settlingVotes = 5
    /// How many more votes the other law needs (than the chosen one) to correct the decision.
    package var correctingVotes = 3
    /// Frames after which voting stops, settled or not (10 s at 20 ms).
    package var votingFrames = 500
    /// Frames whose readings accumulate into the early scores.
    private let accumulatedFrames = 2

    /// The codec in use, once decided.
    package private(set) var decision: AudioCodec?
    /// Frames observed.
    package private(set) var framesObserved = 0
    private var event: Event?
    private var lawCorrected = false

    private var ulaw = Correlations()
    private var alaw = Correlations()
    private var firstFrameBytes = 0
    private var ulawVotes = 0
    private var alawVotes = 0
    private var votingDone = false

    private var windowStart: UInt64 = 0
    private var windowBytes = 0
    private var lastArrival: UInt64?
    private var rateChecked = false

    package init() {}

    /// Feeds one `0x10` payload that arrived at `nanoseconds` (a monotonic clock).
    package mutating func observe(_ payload: UnsafeRawBufferPointer, at nanoseconds: UInt64) -> Step {
        event = nil
        guard !payload.isEmpty else { return decision.map(Step.use) ?? .hold }
        framesObserved += 1
        if framesObserved <= accumulatedFrames {
            Self.add(payload, ulaw: &ulaw, alaw: &alaw)
        }
        if framesObserved == 1 {
            firstFrameBytes = payload.count
            windowStart = nanoseconds
            lastArrival = nanoseconds
            windowBytes = payload.count
            if payload.count % 2 == 0 && payload.count >= slinMinimumBytes {
                decide(.slin, evidence: .frameSize(payload.count))
            } else if let law = g711Law(early: true) {
                decide(law, evidence: .frameSize(payload.count))
            } else {
                return .hold
            }
            return .use(decision!)
        }
        if decision == nil {
            decide(g711Law(early: false)!, evidence: .frameSize(firstFrameBytes))
        }
        checkRate(bytes: payload.count, at: nanoseconds)
        vote(payload)
        return .use(decision!)
    }

    /// Whether frames still get scored (for the rate check no scoring is needed).
    package var isVoting: Bool { !votingDone }

    /// The decision or correction made by the last ``observe(_:at:)``, once.
    package mutating func takeEvent() -> Event? {
        defer { event = nil }
        return event
    }

    private mutating func decide(_ codec: AudioCodec, evidence: Evidence) {
        event = Event(codec: codec, previous: decision, evidence: evidence)
        decision = codec
    }

    private static func add(_ payload: UnsafeRawBufferPointer, ulaw: inout Correlations, alaw: inout Correlations) {
        G711.muLawTable.withUnsafeBufferPointer { table in
            ulaw.add(count: payload.count) { Double(table[Int(payload[$0])]) }
        }
        G711.aLawTable.withUnsafeBufferPointer { table in
            alaw.add(count: payload.count) { Double(table[Int(payload[$0])]) }
        }
    }

    /// The G.711 law the content points to; `nil` when `early` and the margin is too thin.
    private func g711Law(early: Bool) -> AudioCodec? {
        let mu = ulaw.score, a = alaw.score
        if early {
            if mu * earlyRatio <= a { return .ulaw }
            if a * earlyRatio <= mu { return .alaw }
            return nil
        }
        return a < mu ? .alaw : .ulaw
    }

    private mutating func checkRate(bytes: Int, at nanoseconds: UInt64) {
        guard !rateChecked, let last = lastArrival else { return }
        lastArrival = nanoseconds
        if nanoseconds &- last > maximumGap {
            // A pause is not the codec's rate: start over from this frame.
            windowStart = nanoseconds
            windowBytes = bytes
            return
        }
        let elapsed = nanoseconds &- windowStart
        if elapsed >= rateWindow {
            rateChecked = true
            // The bytes that arrived before `nanoseconds` (the window's frames but this one).
            let rate = Int(Double(windowBytes) * 1e9 / Double(elapsed))
            let physical: AudioCodec? = rate >= slinMinimumRate ? .slin : nil
            if physical == .slin && decision != .slin {
                decide(.slin, evidence: .byteRate(rate))
            } else if physical == nil && decision == .slin {
                let law: AudioCodec = ulawVotes == alawVotes ? g711Law(early: false)! : (alawVotes > ulawVotes ? .alaw : .ulaw)
                decide(law, evidence: .byteRate(rate))
            }
        }
        windowBytes += bytes
    }

    /// Scores this frame alone and counts its vote; corrects or settles the law.
    private mutating func vote(_ payload: UnsafeRawBufferPointer) {
        guard !votingDone else { return }
        if framesObserved > votingFrames || (decision == .slin && rateChecked) {
            votingDone = true
            return
        }
        var mu = Correlations(), a = Correlations()
        Self.add(payload, ulaw: &mu, alaw: &a)
        let muScore = mu.score, aScore = a.score
        if muScore * voteRatio <= aScore {
            ulawVotes += 1
        } else if aScore * voteRatio <= muScore {
            alawVotes += 1
        }
        guard let current = decision, current != .slin else { return }
        let (mine, theirs) = current == .ulaw ? (ulawVotes, alawVotes) : (alawVotes, ulawVotes)
        // `event == nil`: one decision per frame, so none goes unreported.
        if !lawCorrected && event == nil && theirs >= mine + correctingVotes {
            lawCorrected = true
            decide(current == .ulaw ? .alaw : .ulaw, evidence: .content)
        } else if mine >= settlingVotes {
            votingDone = true
        }
    }

    /// Running sums for one reading: r₀ = Σx², r₁ = Σx[n]x[n-1], r₂ = Σx[n]x[n-2] within each
    /// frame (frames are short but plentiful; the edges do not matter), and the sample count.
    struct Correlations: Sendable {
        var r0 = 0.0, r1 = 0.0, r2 = 0.0
        var count = 0

        @inline(__always)
        mutating func add(count: Int, sample: (Int) -> Double) {
            var previous = 0.0, beforePrevious = 0.0
            for index in 0..<count {
                let x = sample(index)
                r0 += x * x
                if index >= 1 { r1 += x * previous }
                if index >= 2 { r2 += x * beforePrevious }
                beforePrevious = previous
                previous = x
            }
            self.count += count
        }

        /// `(whiteness + 0.01) × (rms + 16)^(1/16)` (see the type's documentation).
        var score: Double {
            guard r0 > 0, count > 0 else { return 0.01 * 1.189_207_115 }  // (0 + 0.01) × 16^(1/16)
            let k1 = r1 / r0
            let e1 = r0 * (1 - k1 * k1)
            let k2 = e1 > 0 ? (r2 - k1 * r1) / e1 : 0
            let whiteness = max(0, (1 - k1 * k1) * (1 - k2 * k2))
            let rms = PortableMath.squareRoot(r0 / Double(count))
            var level = rms + 16
            for _ in 0..<4 { level = PortableMath.squareRoot(level) }
            return (whiteness + 0.01) * level
        }
    }
}
