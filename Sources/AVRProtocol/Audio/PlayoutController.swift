/// Decides, frame by frame, what a call sends to Asterisk, so that the delay the core adds to
/// the agent's audio comes back to at most one frame after any disturbance.
///
/// Wraps the call's ``PlaybackQueue`` (the bounded ring the STS decodes into) and owns its
/// taking side. Pure: every decision takes the time (monotonic nanoseconds) as an argument.
///
/// Delay here is what a sample of agent audio waits in the queue. Audio an STS sends faster
/// than real time waits because it arrived early: that is *queued ahead*, not delay, and always
/// plays in full and in order. The core *adds* delay only by playing something the agent did
/// not send (silence or padding) while the agent's speech was late; every such frame delays
/// everything queued behind it. The rules:
///
/// 1. **No padding mid-stream.** A tick that finds less than a frame queued while the agent is
///    streaming (audio arrived within the hold window of rule 2) sends what there is as a short
///    frame (Asterisk plays a slin frame of any length; it sends a 276-byte one itself where one
///    played file ends and the next begins). The 2.75 ms a 138-sample frame lacks is a gap in
///    the agent's own stream; padding it would push every later sample 2.75 ms back for good.
///    Only a tail that is really the end (nothing arrived for longer, or the stream closed) is
///    padded to a whole frame: silence follows it anyway.
/// 2. **Hold, do not fill, while the agent is streaming.** A tick that finds the queue dry
///    right after speech, while the last arrival is recent for what it left queued (that
///    length plus two frames after it, 40 to 200 ms: a real-time stream's next message is due
///    when what it sent has played), sends *nothing*: the late audio then goes out the moment
///    it arrives instead of behind a silence frame.
/// 3. **A frame goes as soon as it may.** A full frame that arrives when the last speech frame
///    has played out (its own length after it went: 20 ms, less for a short frame) is sent at
///    once (``promptFrame(into:now:)``) rather than at the next tick, and the call's grid
///    restarts from there: the first frame after a quiet spell, the frame a held tick waited
///    for (whatever arrived, even less than a frame: it is a short frame then, exactly what
///    the agent sent in time; an idle call waits for a whole first frame or its tick), and the
///    frame after a short one (Asterisk paces the frame after its 276-byte one
///    17.25 ms later; waiting for the old grid would add the 2.75 ms for good). A speech frame
///    never follows another sooner than the other's length minus ``Settings/earlyTolerance``
///    (a tick before that sends nothing), with one exception: the grid makes a frame wait
///    for its slot, up to a whole frame when a message came a little late (a busy loop,
///    transport jitter) or after a short frame; a frame that then arrives into an empty queue
///    (an arrival-paced stream, which going early cannot play faster than it comes) may go
///    up to that wait early, once. Without it every on-time message after the late one would
///    wait for the grid too, and the wait would stay for the rest of the stream (a ratchet,
///    seen as 5-30 ms of echo delay after Asterisk's short frames on a loaded loop with a
///    2 ms cap). The credit only gives back what the core made the stream wait, so the caller
///    never receives audio faster than the agent's own pace. A silence frame may be followed
///    sooner, and the overlap is owed: idle silence frames are skipped until it is paid, so over a call the
///    core never sends more than one frame per 20 ms.
/// 4. **Silence played into an underrun is taken back from silence.** When the queue ran dry
///    while the agent was streaming (a hold that ran out), the hold and the silence the core
///    sends after it are counted; when the agent's audio resumes, what the resumption brings
///    at once (within 20 ms), when that is two frames or more, up to that count, is
///    ``addedDelaySamples``: a stalled STS delivers what it held in a burst, a stream that
///    resumes at its own pace (a new turn, even at twice real time) brings less and owes
///    nothing. A burst a busy peer or loop spreads over more than 20 ms still counts, piece
///    by piece, for up to ``Settings/maximumHold``, while what is queued stays two frames
///    and twice the time since the resumption ahead (more than three times real time).
///    While it is at least a frame, frames that are silent all through (peak at most
///    ``Settings/silenceLevel``) are skipped from the head of the queue, at most
///    ``Settings/maximumTrimsPerFrame`` per frame sent, never speech and never the last frame
///    queued. Added delay is forgotten when the queue stays dry past the hold (nothing queued
///    is late any more); a dry spell longer than ``Settings/maximumUnderrun`` is the end of
///    the agent's turn, not a stall, and counts nothing. Audio that was queued ahead and drained long
///    after it arrived is a finished turn too, so a TTS's own pauses play as sent. What timing
///    cannot tell apart: a turn that ran dry just in time (an STS streaming in real time)
///    followed within that limit by a new answer sent in one burst; that answer's pauses are
///    then shortened by at most the gap, and no speech is ever skipped.
///
/// 5. **The core's own lateness is caught up.** Each sample's earliest play time is when it
///    arrived or when the sample before it could have finished playing, whichever is later
///    (``agentScheduleEnd`` follows the last queued one), so audio queued ahead counts as on
///    time however far ahead it is. When the queue, played from now at one frame per tick,
///    would end more than ``Settings/catchUpThreshold`` after that (ticks that fired late or
///    were skipped on a loop that fell behind, which rules 1–4 never see: nothing silent was
///    played, so there is no silence to take back), the tick sends one more frame on top of
///    its own (``catchUpFrame(into:now:)``), until the queue is back within the threshold.
///    Nothing is skipped: the caller gets the late audio a frame sooner each tick.
///
/// A stall (an STS that stopped mid-stream and then delivers what it held in one burst) shows
/// as added delay of a second or more with as much queued: ``Arrival/stall`` reports it once
/// per episode so the call can log it.
package struct PlayoutController: Sendable {
    package struct Settings: Sendable {
        /// Nanoseconds per frame (20 ms).
        package var interval: UInt64 = 20_000_000
        /// Samples per frame (160 at 8 kHz).
        package var frameSamples = 160
        /// How much earlier than its due time a frame arriving into an empty queue may go, at
        /// most, to give back what the grid made the frame before it wait (rule 3): a whole
        /// frame, so no wait on the grid outlives the message that caused it.
        package var maximumEarly: UInt64 = 20_000_000
        /// How much earlier than a full interval after the last frame a tick still counts as
        /// due (libuv timers fire up to a millisecond late, so a grid restarted at an arbitrary
        /// instant meets slot deadlines that much early).
        package var earlyTolerance: UInt64 = 1_000_000
        /// The shortest and longest a dry queue is held after speech (see rule 2).
        package var minimumHold: UInt64 = 40_000_000
        package var maximumHold: UInt64 = 200_000_000
        /// A frame whose samples all have at most this magnitude is silence (about -54 dBFS).
        package var silenceLevel = 64
        /// Silent frames skipped per frame sent while added delay is being paid back.
        package var maximumTrimsPerFrame = 4
        /// Added delay, with as much queued, that counts as a stall (1 s).
        package var stallSamples = 8000
        /// A dry spell longer than this (5 s) ends the agent's turn instead of stalling it.
        package var maximumUnderrun = 40_000
        /// How far behind the agent's own schedule the queue may end before a tick sends an
        /// extra frame (rule 5): a frame plus a slot spacing (the 5 ms a frame may wait for its
        /// slot), so only a whole frame the core itself made late is caught up.
        package var catchUpThreshold: UInt64 = 25_000_000

        package init() {}

        package var nanosecondsPerSample: UInt64 { interval / UInt64(frameSamples) }
    }

    /// What one tick sends.
    package enum Output: Equatable, Sendable {
        /// This many samples of agent audio, at the start of the frame; fewer than a frame is
        /// a short frame, sent as such.
        case speech(Int)
        /// A frame of silence (the caller's line never goes dead; ambient noise mixes in).
        case silence
        /// Nothing this tick: a held dry queue, a silence frame skipped to pay back an overlap,
        /// or not due yet.
        case nothing
    }

    /// What an arrival means for the call.
    package struct Arrival: Equatable, Sendable {
        /// A frame may go now, not at the next tick: send it (``promptFrame(into:now:)``).
        package var frameDue = false
        /// Added delay just crossed ``Settings/stallSamples`` (once per episode).
        package var stall = false
    }

    private enum Phase: Sendable {
        /// Not speaking: silence on the grid.
        case idle
        /// Speech frames on the grid.
        case playing
        /// The queue ran dry while the agent was streaming: nothing sent, waiting for it.
        case holding
        /// Dry after loud speech and the hold ran out: the silence sent is counted.
        case underrun
    }

    package let settings: Settings
    /// The samples waiting; its limits and drop counts are the call's.
    package private(set) var queue: PlaybackQueue
    private var phase = Phase.idle
    /// When the last frame (or skipped silence frame) went out, nil before the first.
    private var lastSend: UInt64?
    private var lastSendWasSilence = true
    /// How long the last frame plays (a short frame less than an interval).
    private var lastDuration: UInt64 = 0
    private var lastArrival: UInt64?
    /// The last gap between two arrivals (0 after a long pause): the stream's rhythm.
    private var arrivalGap: UInt64 = 0
    /// Samples queued right after the last arrival.
    private var queuedAtLastArrival = 0
    private var underrunSamples = 0
    /// The silence of the last underrun, while its resumption (one frame's time) may still
    /// bring what was late.
    private var owedSamples = 0
    private var resumedAt: UInt64 = 0
    /// How early a frame arriving into an empty queue may go (see ``Settings/maximumEarly``).
    private var earlyCredit: UInt64 = 0
    private var arrivedIntoEmptyQueue = false
    /// The tick that started the current hold.
    private var holdStart: UInt64 = 0
    private var silenceDebtSamples = 0
    private var stallReported = false

    /// Silence the core played into an underrun, not yet taken back (samples).
    package private(set) var addedDelaySamples = 0
    /// The most added delay seen (samples).
    package private(set) var maximumAddedDelaySamples = 0
    /// Silent samples skipped from the queue to pay added delay back.
    package private(set) var paidBackSamples = 0
    /// Frames sent at once on arrival rather than at a tick.
    package private(set) var promptFrames = 0
    /// Frames shorter than a frame (a tail sent without padding).
    package private(set) var shortFrames = 0
    /// Ticks that sent nothing while holding for late audio.
    package private(set) var heldTicks = 0
    /// Idle silence frames skipped to pay back early frames.
    package private(set) var skippedSilenceFrames = 0
    /// Stall episodes (see ``Arrival/stall``).
    package private(set) var stalls = 0
    /// Extra frames sent because the core had fallen behind (rule 5).
    package private(set) var catchUpFrames = 0
    /// Frames sent ahead of the grid (``aheadFrame(into:now:)``).
    package private(set) var aheadFrames = 0
    /// When the last queued sample could have finished playing at the earliest (rule 5).
    package private(set) var agentScheduleEnd: UInt64 = 0

    package init(queue: PlaybackQueue, settings: Settings = Settings()) {
        self.queue = queue
        self.settings = settings
    }

    package var queuedSamples: Int { queue.queuedSamples }
    package var isEmpty: Bool { queue.isEmpty }

    // MARK: Arrivals

    /// Queues s16le PCM (see ``PlaybackQueue/append(pcmLittleEndian:)``) that arrived at `now`.
    package mutating func append(pcmLittleEndian bytes: UnsafeRawBufferPointer, now: UInt64) -> Arrival {
        let before = queue.queuedSamples
        queue.append(pcmLittleEndian: bytes)
        return arrived(at: now, samples: queue.queuedSamples - before)
    }

    /// Queues base64 s16le PCM decoded straight into the ring (see
    /// ``PlaybackQueue/append(base64LittleEndianPCM:)``); invalid base64 queues nothing and throws.
    package mutating func append(base64LittleEndianPCM input: UnsafeRawBufferPointer, now: UInt64) throws(Base64Error) -> Arrival {
        let before = queue.queuedSamples
        try queue.append(base64LittleEndianPCM: input)
        return arrived(at: now, samples: queue.queuedSamples - before)
    }

    private mutating func arrived(at now: UInt64, samples: Int) -> Arrival {
        guard samples > 0 else { return Arrival() }
        agentScheduleEnd = max(agentScheduleEnd, now) &+ UInt64(samples) &* settings.nanosecondsPerSample
        arrivedIntoEmptyQueue = queue.queuedSamples == samples
        queuedAtLastArrival = queue.queuedSamples
        if let last = lastArrival {
            let gap = now &- last
            arrivalGap = gap < settings.maximumHold ? gap : 0
        }
        lastArrival = now
        var arrival = Arrival()
        if underrunSamples > 0 {
            owedSamples = underrunSamples
            underrunSamples = 0
            resumedAt = now
        }
        if owedSamples > 0 {
            let elapsed = now &- resumedAt
            if elapsed <= settings.maximumHold {
                // A resumption that brings two frames or more at once is the held audio, late
                // by the silence played: owed, up to that silence. A stream that resumes at
                // its own pace (a new turn, even at twice real time) brings less, and owes
                // nothing. A busy peer or loop may spread one burst over several messages
                // and more than a frame's time: later pieces still count while the queue
                // stays ahead of three times real time since the resumption (what a stream
                // at twice real time leaves queued is about the time elapsed).
                let queued = queue.queuedSamples
                let sinceResumption = Int(elapsed / settings.nanosecondsPerSample)
                let least = elapsed <= settings.interval ? 2 * settings.frameSamples
                                                         : 2 * settings.frameSamples + 2 * sinceResumption
                let burst = queued >= least ? min(owedSamples, queued) : 0
                if burst > addedDelaySamples { addedDelaySamples = burst }
                if addedDelaySamples > maximumAddedDelaySamples { maximumAddedDelaySamples = addedDelaySamples }
            } else {
                owedSamples = 0
            }
        }
        if !stallReported && addedDelaySamples >= settings.stallSamples && queue.queuedSamples >= settings.stallSamples {
            stallReported = true
            stalls += 1
            arrival.stall = true
        }
        arrival.frameDue = mayPlayAtOnce(now)
        return arrival
    }

    /// A full frame queued (or whatever arrived, when a tick found the queue dry mid-stream, or
    /// the agent sends at most a frame per interval: then less than a frame is a frame of its
    /// own, like Asterisk's 276-byte one), and the last frame, if it was speech, played out by
    /// `now`. A call that was idle waits for a whole first frame (the rest of a burst is
    /// microseconds behind its first message) or its next tick.
    private func mayPlayAtOnce(_ now: UInt64) -> Bool {
        let partialIsAFrame = switch phase {
        case .idle: false
        case .holding, .underrun: true
        case .playing: arrivalGap &+ settings.earlyTolerance >= settings.interval
        }
        guard queue.queuedSamples >= settings.frameSamples || (!queue.isEmpty && partialIsAFrame) else { return false }
        guard !lastSendWasSilence, let last = lastSend else { return true }
        return now &+ settings.earlyTolerance &+ usableEarlyCredit >= last &+ lastDuration
    }

    /// The early credit an arrival may use: only when it found the queue empty (the stream is
    /// arrival-paced, so going early cannot play it faster than it comes).
    private var usableEarlyCredit: UInt64 { arrivedIntoEmptyQueue ? earlyCredit : 0 }

    /// The agent was interrupted: everything queued is dropped, and with it any added delay;
    /// the next audio starts a new turn.
    package mutating func clear() {
        queue.clear()
        agentScheduleEnd = 0
        earlyCredit = 0
        phase = .idle
        addedDelaySamples = 0
        underrunSamples = 0
        owedSamples = 0
        stallReported = false
    }

    // MARK: Frames

    /// The frame an arrival made due (``Arrival/frameDue``), sent at `now`: writes it into the
    /// start of `frame` (at least ``Settings/frameSamples`` long) and returns its sample count
    /// (less than a frame for a short one), 0 when nothing is due. The call's grid restarts at
    /// `now`: the next frame is due that many samples later.
    package mutating func promptFrame(into frame: UnsafeMutableBufferPointer<Int16>, now: UInt64) -> Int {
        guard mayPlayAtOnce(now) else { return 0 }
        if lastSendWasSilence, let last = lastSend, now < last &+ settings.interval {
            // The silence frame just sent and this one overlap at the caller's end: owed.
            silenceDebtSamples += Int((last &+ settings.interval - now) / settings.nanosecondsPerSample)
        }
        if !lastSendWasSilence, let last = lastSend, now &+ settings.earlyTolerance < last &+ lastDuration {
            earlyCredit -= min(earlyCredit, last &+ lastDuration &- now)
        }
        promptFrames += 1
        return play(into: frame, at: now)
    }

    /// The frame for the tick at `time` (a slot deadline of the scheduler). `streamOpen` is
    /// false once the speech backend finished (nothing more will come: no hold).
    package mutating func tick(at time: UInt64, into frame: UnsafeMutableBufferPointer<Int16>, streamOpen: Bool) -> Output {
        if let last = lastSend, time &+ settings.earlyTolerance < last &+ lastDuration {
            return .nothing
        }
        let streaming = streamOpen && lastArrival.map { time < $0 &+ holdWindow } ?? false
        if !queue.isEmpty {
            // What the grid made this frame wait past its arrival may be given back later.
            let waited = lastArrival.map { time >= $0 && time &- $0 < settings.interval ? time &- $0 : 0 } ?? 0
            var count = play(into: frame, at: time)
            if count < settings.frameSamples && !streaming {
                // The real end (nothing arrived for a while, or the stream closed): a whole
                // frame, padded, as every other frame; only silence follows it.
                for index in count..<settings.frameSamples { frame[index] = 0 }
                count = settings.frameSamples
                lastDuration = settings.interval
            }
            if count < settings.frameSamples { shortFrames += 1 }
            earlyCredit = min(waited, settings.maximumEarly)
            return .speech(count)
        }
        if streaming, phase == .playing || phase == .holding {
            if phase == .playing { holdStart = time }
            phase = .holding
            heldTicks += 1
            return .nothing
        }
        if phase == .playing || phase == .holding {
            // Dry, and nothing came in time: nothing queued is late any more, so what was owed
            // is forgotten (a burst spread over a few messages is still one, whatever the
            // ticks between them found).
            addedDelaySamples = 0
            stallReported = false
            // Dry within the stream's rhythm (held): the agent is late, not done. A queue that
            // drains long after its last arrival (audio sent ahead) is the end of a turn.
            let held = phase == .holding
            phase = streamOpen && held ? .underrun : .idle
            if phase == .underrun {
                // The hold was the start of the underrun: what arrives now is that much late too.
                underrunSamples += Int((time &- holdStart) / settings.nanosecondsPerSample)
            }
        }
        if phase == .underrun {
            underrunSamples += settings.frameSamples
            if underrunSamples > settings.maximumUnderrun {
                phase = .idle
                underrunSamples = 0
            }
        } else if silenceDebtSamples >= settings.frameSamples {
            silenceDebtSamples -= settings.frameSamples
            skippedSilenceFrames += 1
            lastSend = time
            lastSendWasSilence = true
            lastDuration = settings.interval
            return .nothing
        }
        lastSend = time
        lastSendWasSilence = true
        lastDuration = settings.interval
        return .silence
    }

    /// How much later than the agent's own schedule (rule 5) what is queued would finish if
    /// played from `now` at one frame per tick: the delay the core's own lateness added.
    package func lateness(at now: UInt64) -> UInt64 {
        let next = max(now, lastSend.map { $0 &+ lastDuration } ?? now)
        let finish = next &+ UInt64(queue.queuedSamples) &* settings.nanosecondsPerSample
        return finish > agentScheduleEnd ? finish - agentScheduleEnd : 0
    }

    /// Rule 5: after a tick's frame, one more frame when the queue is more than
    /// ``Settings/catchUpThreshold`` behind the agent's schedule at `now`; writes it into
    /// `frame` and returns its sample count, 0 when none is due. The grid stays the tick's:
    /// the next tick is due when it would have been.
    package mutating func catchUpFrame(into frame: UnsafeMutableBufferPointer<Int16>, now: UInt64) -> Int {
        guard phase == .playing, queue.queuedSamples >= settings.frameSamples,
              lateness(at: now) > settings.catchUpThreshold else { return 0 }
        let (send, duration) = (lastSend, lastDuration)
        let count = play(into: frame, at: now)
        lastSend = send
        lastDuration = duration
        catchUpFrames += 1
        return count
    }

    /// Sending ahead (the channel's queue paces the frames, not the ticks): a whole frame of
    /// queued audio at `now`, whatever the grid; writes it into `frame` and returns its sample
    /// count, 0 when less than a frame is queued (a tail waits for a tick, which pads it or
    /// sends it short as rule 1 says). The grid restarts from it, as for a prompt frame.
    package mutating func aheadFrame(into frame: UnsafeMutableBufferPointer<Int16>, now: UInt64) -> Int {
        guard queue.queuedSamples >= settings.frameSamples else { return 0 }
        aheadFrames += 1
        return play(into: frame, at: now)
    }

    /// How long after the last arrival a dry queue is held: what was queued then, and two
    /// frames (a real-time stream's next message is due when what it sent has played). Audio
    /// queued far ahead drains long after the window, and its end is the end of a turn.
    private var holdWindow: UInt64 {
        let length = UInt64(min(queuedAtLastArrival, settings.frameSamples * 50)) &* settings.nanosecondsPerSample
        return min(max(length &+ 2 &* settings.interval, settings.minimumHold), settings.maximumHold)
    }

    private mutating func play(into frame: UnsafeMutableBufferPointer<Int16>, at time: UInt64) -> Int {
        let frameSamples = settings.frameSamples
        var trims = 0
        while addedDelaySamples >= frameSamples, trims < settings.maximumTrimsPerFrame,
              queue.queuedSamples > frameSamples, queue.peak(ofFirst: frameSamples) <= settings.silenceLevel {
            queue.discard(frameSamples)
            addedDelaySamples -= frameSamples
            // What is paid is no longer owed: a later piece of the same burst counts the rest.
            owedSamples = max(0, owedSamples - frameSamples)
            paidBackSamples += frameSamples
            trims += 1
        }
        let count = queue.take(into: UnsafeMutableBufferPointer(rebasing: frame[0..<frameSamples]))
        lastSend = time
        lastSendWasSilence = false
        lastDuration = UInt64(count) &* settings.nanosecondsPerSample
        phase = .playing
        return count
    }
}
