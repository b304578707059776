import AVRProtocol
import Synchronization

/// What `POST /call` decided for a call, waiting for its AudioSocket connection: the payload,
/// the effective STS URL (payload appended; nil when no STS is configured) and whether the
/// `call_initiated` webhook chose the base URL. The same value the shared registry stores.
package typealias CallRoute = RouteRecord

/// Calls registered by `POST /call`, keyed by uuid, until their AudioSocket connection
/// claims them or their time-to-live runs out. Bounded: when `capacity` entries are
/// pending, new uuids are refused (the HTTP layer answers 503).
///
/// Thread-safe (a `Mutex`), so loops on several threads can share one registry; a
/// registry shared across instances would implement the same operations over the network.
package final class CallRegistry: Sendable {
    private struct Entry {
        var route: CallRoute
        var generation: UInt64
    }

    private struct State {
        var entries: [CallUUID: Entry] = [:]
        /// Registration order = expiry order (one TTL for all); stale records (replaced or
        /// claimed entries) are skipped when they reach the front.
        var expiries: [(uuid: CallUUID, generation: UInt64, deadline: UInt64)] = []
        var head = 0
        var nextGeneration: UInt64 = 0
    }

    package enum RegisterResult: Equatable, Sendable { case registered, replaced, full }

    private let state = Mutex(State())
    package let timeToLive: UInt64
    package let capacity: Int

    /// `timeToLive` in the same unit as the `now` values passed in (milliseconds here).
    package init(timeToLive: UInt64, capacity: Int) {
        self.timeToLive = timeToLive
        self.capacity = capacity
    }

    package var count: Int { state.withLock { $0.entries.count } }

    /// Stores (or replaces) the route for `uuid`.
    package func register(_ uuid: CallUUID, route: CallRoute, now: UInt64) -> RegisterResult {
        state.withLock { state in
            let exists = state.entries[uuid] != nil
            if !exists && state.entries.count >= capacity { return .full }
            state.nextGeneration += 1
            state.entries[uuid] = Entry(route: route, generation: state.nextGeneration)
            state.expiries.append((uuid, state.nextGeneration, now + timeToLive))
            return exists ? .replaced : .registered
        }
    }

    /// True when a new uuid could be registered now (a hint: another may take the slot).
    package func hasRoom(for uuid: CallUUID) -> Bool {
        state.withLock { $0.entries[uuid] != nil || $0.entries.count < capacity }
    }

    /// Removes and returns the route for `uuid` (the AudioSocket connection arrived).
    package func claim(_ uuid: CallUUID) -> CallRoute? {
        state.withLock { $0.entries.removeValue(forKey: uuid)?.route }
    }

    /// Drops entries whose time-to-live has passed; returns how many.
    @discardableResult
    package func expire(now: UInt64) -> Int {
        state.withLock { state in
            var removed = 0
            while state.head < state.expiries.count, state.expiries[state.head].deadline <= now {
                let record = state.expiries[state.head]
                state.head += 1
                if state.entries[record.uuid]?.generation == record.generation {
                    state.entries[record.uuid] = nil
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
