import AVRProtocol

/// Something that sends one 20 ms frame per tick.
protocol PacedPlayer: AnyObject {
    /// The slot's deadlines for `count` frames have come (usually 1; more when the loop ran
    /// late): the first was due at `deadline`, the others one interval apart. `skipped`
    /// deadlines before them were given up (the loop ran too late to catch up on them).
    func playFrames(_ count: Int, from deadline: UInt64, skipped: Int)
    /// Where the scheduler keeps it (slot, index), nil when not scheduled.
    var schedulerPosition: (slot: Int, index: Int)? { get set }
}

/// Drives every call's playback on one loop with a single timer.
///
/// Calls are spread over `slotCount` phase slots (5 ms apart with 4 slots), so the work of
/// a tick is a quarter of the calls and the loop stays responsive in between. Each slot
/// keeps absolute 20 ms deadlines on the monotonic clock (`PacingClock`): no drift over any
/// call length. When the loop runs late a slot sends at most `maxCatchUp` frames per call
/// and then resynchronises, rather than bursting seconds of audio.
final class PlaybackScheduler {
    private let loop: EventLoop
    private let timer: Timer
    private var clocks: [PacingClock]
    private var slots: [[PacedPlayer]]
    private let interval: UInt64
    private let maxCatchUp: Int
    private let log: Logger
    private let metrics: LoopMetrics?
    private var lastLateWarning: UInt64 = 0

    init(loop: EventLoop, log: Logger, metrics: LoopMetrics? = nil, slotCount: Int = 4, interval: UInt64 = 20_000_000,
         maxCatchUp: Int = 3) throws(UVError) {
        self.loop = loop
        self.log = log
        self.metrics = metrics
        timer = try Timer(loop: loop)
        self.interval = interval
        self.maxCatchUp = maxCatchUp
        clocks = []
        slots = Array(repeating: [], count: slotCount)
        resetClocks()
    }

    /// Starts every slot's deadlines afresh from now (when the first call arrives, so an
    /// idle period is not mistaken for lateness).
    private func resetClocks() {
        let start = loop.nanoseconds
        let spacing = interval / UInt64(slots.count)
        clocks = (0..<slots.count).map {
            PacingClock(start: start + UInt64($0) * spacing, interval: interval, maxCatchUp: maxCatchUp)
        }
    }

    var playerCount: Int { slots.reduce(0) { $0 + $1.count } }

    /// Schedules `player` in the least loaded slot; its first frame goes out at that slot's next deadline.
    func add(_ player: PacedPlayer) {
        guard player.schedulerPosition == nil else { return }
        if playerCount == 0 { resetClocks() }
        var best = 0
        for slot in slots.indices where slots[slot].count < slots[best].count { best = slot }
        player.schedulerPosition = (best, slots[best].count)
        slots[best].append(player)
        if !timer.isActive { rearm() }
    }

    func remove(_ player: PacedPlayer) {
        guard player.schedulerPosition != nil else { return }
        detach(player)
        if playerCount == 0 { timer.stop() }
    }

    /// Moves `player` to the slot whose next deadline comes first at or after `earliest`:
    /// a call that just sent a frame at once (agent audio after a quiet spell) keeps its 20 ms
    /// grid from that frame, to within one slot spacing (5 ms), instead of from its old slot.
    /// Constant time; the timer is unchanged (every slot keeps its deadlines).
    func rephase(_ player: PacedPlayer, earliest: UInt64) {
        guard let position = player.schedulerPosition else { return }
        var best = position.slot
        var bestDeadline = UInt64.max
        for slot in clocks.indices {
            var deadline = clocks[slot].nextDeadline
            if deadline < earliest { deadline += (earliest - deadline + interval - 1) / interval * interval }
            if deadline < bestDeadline {
                best = slot
                bestDeadline = deadline
            }
        }
        guard best != position.slot else { return }
        detach(player)
        player.schedulerPosition = (best, slots[best].count)
        slots[best].append(player)
    }

    private func detach(_ player: PacedPlayer) {
        guard let position = player.schedulerPosition else { return }
        player.schedulerPosition = nil
        // In place (no copy of the slot's array): a call may move every frame.
        let last = slots[position.slot].removeLast()
        if position.index < slots[position.slot].count {
            slots[position.slot][position.index] = last
            last.schedulerPosition = (position.slot, position.index)
        }
    }

    private func tick() {
        let now = loop.nanoseconds
        for slot in slots.indices {
            let skippedBefore = clocks[slot].framesSkipped
            let deadline = clocks[slot].nextDeadline
            let due = clocks[slot].framesDue(now: now)
            guard due > 0 else { continue }
            let skipped = clocks[slot].framesSkipped - skippedBefore
            if let metrics, !slots[slot].isEmpty {
                metrics.lateness.recordNanoseconds(Int64(now - deadline))
                metrics.droppedLate += Int(skipped) * slots[slot].count
            }
            // At most one line a second: a loop that is late keeps being late for a while.
            if skipped > 0 && !slots[slot].isEmpty && now - lastLateWarning >= 1_000_000_000 {
                lastLateWarning = now
                log.warn("Playback ran \(skipped * interval / 1_000_000) ms late: \(skipped) frame(s) skipped for \(slots[slot].count) call(s)")
            }
            // Players may leave during the tick (a call ending); walk a snapshot and skip
            // the ones no longer scheduled.
            let players = slots[slot]
            let first = clocks[slot].nextDeadline - UInt64(due) * interval
            for player in players where player.schedulerPosition != nil {
                player.playFrames(due, from: first, skipped: Int(skipped))
            }
        }
        metrics?.flush()
        rearm()
    }

    private func rearm() {
        guard playerCount > 0 else { return timer.stop() }
        let now = loop.nanoseconds
        let next = clocks.map { $0.delayUntilNextDeadline(now: now) }.min() ?? interval
        // libuv timers count whole milliseconds: round up so we never wake early.
        let milliseconds = (next + 999_999) / 1_000_000
        timer.start(timeout: milliseconds) { [unowned self] in self.tick() }
    }

    func close() {
        timer.close()
        slots = Array(repeating: [], count: slots.count)
    }
}
