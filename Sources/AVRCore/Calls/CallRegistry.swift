import AVRProtocol
import Synchronization

/// What `POST /call` decided for a call, waiting for its AudioSocket connection: the payload,
/// the effective STS URL (payload appended; nil when no STS is configured) and whether the
/// `call_initiated` webhook chose the base URL. The same value the shared registry stores.
package typealias CallRoute = RouteRecord

/// Calls registered by `POST /call`, keyed by uuid, until their AudioSocket connection
/// claims them or their time-to-live runs out. Bounded twice: when `capacity` entries are
/// pending, new uuids are refused, and so is any route whose bytes (counted by the caller:
/// the request body and the STS URL) would take the stored total over `byteBudget` (the HTTP
/// layer answers 503 to both).
///
/// Thread-safe (a `Mutex`), so loops on several threads can share one registry; a
/// registry shared across instances would implement the same operations over the network.
package final class CallRegistry: Sendable {
    private struct Entry {
        var route: CallRoute
        var generation: UInt64
        var bytes: Int
    }

    private struct State {
        var entries: [CallUUID: Entry] = [:]
        /// Registration order = expiry order (one TTL for all); stale records (replaced or
        /// claimed entries) are skipped when they reach the front.
        var expiries: [(uuid: CallUUID, generation: UInt64, deadline: UInt64)] = []
        var head = 0
        var nextGeneration: UInt64 = 0
        /// Sum of the entries' `bytes`.
        var bytes = 0
    }

    package enum RegisterResult: Equatable, Sendable {
        case registered, replaced
        /// `capacity` entries are pending.
        case full
        /// The route would take the stored bytes over `byteBudget`.
        case overBudget
    }

    private let state = Mutex(State())
    package let timeToLive: UInt64
    package let capacity: Int
    package let byteBudget: Int

    /// `timeToLive` in the same unit as the `now` values passed in (milliseconds here).
    package init(timeToLive: UInt64, capacity: Int, byteBudget: Int = .max) {
        self.timeToLive = timeToLive
        self.capacity = capacity
        self.byteBudget = byteBudget
    }

    package var count: Int { state.withLock { $0.entries.count } }

    /// Bytes the pending routes hold (as counted at `register`).
    package var bytes: Int { state.withLock { $0.bytes } }

    /// Stores (or replaces) the route for `uuid`; `bytes`: what the route holds.
    package func register(_ uuid: CallUUID, route: CallRoute, bytes: Int = 0, now: UInt64) -> RegisterResult {
        state.withLock { state in
            let previous = state.entries[uuid]?.bytes
            if previous == nil && state.entries.count >= capacity { return .full }
            if state.bytes - (previous ?? 0) + bytes > byteBudget { return .overBudget }
            let exists = previous != nil
            state.bytes += bytes - (previous ?? 0)
            state.nextGeneration += 1
            state.entries[uuid] = Entry(route: route, generation: state.nextGeneration, bytes: bytes)
            state.expiries.append((uuid, state.nextGeneration, now + timeToLive))
            return exists ? .replaced : .registered
        }
    }

    /// Whether `uuid` could be registered now with a route of `bytes` (a hint: another may
    /// take the room): nil if so, else why not (`.full`, `.overBudget`).
    package func room(for uuid: CallUUID, bytes: Int = 0) -> RegisterResult? {
        state.withLock { state in
            let previous = state.entries[uuid]?.bytes
            if previous == nil && state.entries.count >= capacity { return .full }
            if state.bytes - (previous ?? 0) + bytes > byteBudget { return .overBudget }
            return nil
        }
    }

    /// True when a new uuid could be registered now (a hint: another may take the slot).
    package func hasRoom(for uuid: CallUUID) -> Bool {
        room(for: uuid) == nil
    }

    /// Removes and returns the route for `uuid` (the AudioSocket connection arrived).
    package func claim(_ uuid: CallUUID) -> CallRoute? {
        state.withLock { state in
            guard let entry = state.entries.removeValue(forKey: uuid) else { return nil }
            state.bytes -= entry.bytes
            return entry.route
        }
    }

    /// Drops entries whose time-to-live has passed; returns how many.
    @discardableResult
    package func expire(now: UInt64) -> Int {
        state.withLock { state in
            var removed = 0
            while state.head < state.expiries.count, state.expiries[state.head].deadline <= now {
                let record = state.expiries[state.head]
                state.head += 1
                if let entry = state.entries[record.uuid], entry.generation == record.generation {
                    state.entries[record.uuid] = nil
                    state.bytes -= entry.bytes
                    removed += 1
                }
            }
            // Reclaim the consumed prefix once it dominates the queue.
            if state.head > 1024 && state.head * 2 > state.expiries.count {
                state.expiries.removeFirst(state.head)
                state.head = 0
            }
            if state.expiries.isEmpty { state.expiries = []; state.head = 0 }
            return removed
        }
    }
}
