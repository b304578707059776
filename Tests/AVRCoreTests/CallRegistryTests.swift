import Testing
import AVRProtocol
@testable import AVRCore

@Suite struct CallRegistryTests {
    let a = CallUUID(string: "935652e3-7c59-4edc-b17f-9646a9c2a265")!
    let b = CallUUID(string: "00000000-0000-0000-0000-000000000001")!
    let c = CallUUID(string: "00000000-0000-0000-0000-000000000002")!

    func route(_ url: String) -> CallRoute { CallRoute(payload: ["n": "1"], stsURL: url, overridden: false) }

    /// Stored bytes are counted: beyond the budget new routes (and growing replacements) are
    /// refused; claims, replacements and expiry give the bytes back.
    @Test func theByteBudgetBoundsWhatPendingRoutesHold() {
        let registry = CallRegistry(timeToLive: 1000, capacity: 100, byteBudget: 1000)
        #expect(registry.register(a, route: route("ws://x/a"), bytes: 600, now: 0) == .registered)
        #expect(registry.bytes == 600)
        #expect(registry.room(for: b, bytes: 401) == .overBudget)
        #expect(registry.register(b, route: route("ws://x/b"), bytes: 401, now: 0) == .overBudget)
        #expect(registry.count == 1 && registry.bytes == 600)
        #expect(registry.room(for: b, bytes: 400) == nil)
        #expect(registry.register(b, route: route("ws://x/b"), bytes: 400, now: 0) == .registered)
        #expect(registry.bytes == 1000)
        // A replacement is counted without its predecessor.
        #expect(registry.register(a, route: route("ws://x/a2"), bytes: 500, now: 10) == .replaced)
        #expect(registry.bytes == 900)
        #expect(registry.register(a, route: route("ws://x/a3"), bytes: 700, now: 10) == .overBudget)
        #expect(registry.claim(b) != nil)
        #expect(registry.bytes == 500)
        #expect(registry.expire(now: 2000) == 1)
        #expect(registry.count == 0 && registry.bytes == 0)
        #expect(registry.register(c, route: route("ws://x/c"), bytes: 1000, now: 2000) == .registered)
    }

    @Test func claimReturnsTheRouteOnce() {
        let registry = CallRegistry(timeToLive: 1000, capacity: 10)
        #expect(registry.register(a, route: route("ws://x/1"), now: 0) == .registered)
        #expect(registry.claim(a)?.stsURL == "ws://x/1")
        #expect(registry.claim(a) == nil)
        #expect(registry.count == 0)
    }

    @Test func aRepeatedPostReplacesTheEntryAndRestartsItsLife() {
        let registry = CallRegistry(timeToLive: 1000, capacity: 10)
        _ = registry.register(a, route: route("ws://x/1"), now: 0)
        #expect(registry.register(a, route: route("ws://x/2"), now: 900) == .replaced)
        // The first registration's deadline passes, but it no longer owns the entry.
        #expect(registry.expire(now: 1000) == 0)
        #expect(registry.claim(a)?.stsURL == "ws://x/2")
    }

    @Test func unclaimedEntriesExpireAfterTheirTimeToLive() {
        let registry = CallRegistry(timeToLive: 1000, capacity: 10)
        _ = registry.register(a, route: route("ws://x/a"), now: 0)
        _ = registry.register(b, route: route("ws://x/b"), now: 500)
        #expect(registry.expire(now: 999) == 0)
        #expect(registry.expire(now: 1000) == 1)
        #expect(registry.count == 1)
        #expect(registry.expire(now: 1500) == 1)
        #expect(registry.count == 0)
    }

    @Test func aFullRegistryRefusesNewUUIDsButAcceptsReplacements() {
        let registry = CallRegistry(timeToLive: 1000, capacity: 2)
        _ = registry.register(a, route: route("ws://x/a"), now: 0)
        _ = registry.register(b, route: route("ws://x/b"), now: 0)
        #expect(!registry.hasRoom(for: c))
        #expect(registry.register(c, route: route("ws://x/c"), now: 0) == .full)
        #expect(registry.register(a, route: route("ws://x/a2"), now: 0) == .replaced)
        _ = registry.claim(b)
        #expect(registry.register(c, route: route("ws://x/c"), now: 0) == .registered)
    }

    @Test func manyRoundsOfRegistrationsAllExpire() {
        let registry = CallRegistry(timeToLive: 10, capacity: 100_000)
        for round in 0..<50 {
            for index in 0..<1000 {
                _ = registry.register(CallUUID(high: UInt64(round), low: UInt64(index)), route: route("ws://x"), now: UInt64(round * 20))
            }
            registry.expire(now: UInt64(round * 20 + 10))
        }
        #expect(registry.count == 0)
    }
}
