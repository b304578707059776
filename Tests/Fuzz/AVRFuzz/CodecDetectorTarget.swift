import AVRProtocol

let extraTargets: [FuzzTarget] = [
    FuzzTarget(name: "codec-detector", run: fuzzCodecDetector),
    FuzzTarget(name: "vad", run: fuzzBargeInDetector),
    FuzzTarget(name: "ws-media", run: fuzzMediaControl),
] + pipelineTargets

/// The codec detector fed a call's `0x10` payloads with their arrival times, as the call
/// session feeds it. Input: records of [length high, length low, gap], then `length` payload
/// bytes (the last record takes what is left). Length is taken modulo 1024; the gap is in
/// milliseconds (0–255: bursts, 20 ms pacing, stalls past the 200 ms gap limit), scaled ×4
/// when bit 7 of the first byte is set (so the 1 s rate window is reached in fewer records).
/// Invariants: only the first non-empty payload may be held; once decided, every step uses
/// the current decision and the decision never goes back to undecided; after the first
/// decision at most one correction by byte rate and one by content (never by size), each
/// reported exactly once by `takeEvent`; an odd first payload
/// is never read as slin from its size; `framesObserved` counts the non-empty payloads.
func fuzzCodecDetector(_ data: UnsafeRawBufferPointer) {
    guard let control = data.first else { return }
    let scale: UInt64 = control & 0x80 != 0 ? 4_000_000 : 1_000_000
    var detector = CodecDetector()
    var now: UInt64 = UInt64(control) * 1_000_000_007 // an arbitrary monotonic origin
    var offset = 1
    var nonEmpty = 0
    var held = 0
    var events: [CodecDetector.Event] = []
    var firstSize: Int?
    while offset + 3 <= data.count {
        let length = (Int(data[offset]) << 8 | Int(data[offset + 1])) % 1024
        now += UInt64(data[offset + 2]) * scale
        offset += 3
        let end = min(offset + length, data.count)
        let payload = UnsafeRawBufferPointer(rebasing: data[offset..<end])
        offset = end
        let before = detector.decision
        let step = detector.observe(payload, at: now)
        if !payload.isEmpty {
            nonEmpty += 1
            if firstSize == nil { firstSize = payload.count }
        }
        require(detector.framesObserved == nonEmpty, "framesObserved \(detector.framesObserved) of \(nonEmpty)")
        switch step {
        case .hold:
            // An empty payload (the AudioSocket decoder never passes one on) holds nothing.
            if !payload.isEmpty { held += 1 }
            require(detector.decision == nil, "held with a decision")
            require(nonEmpty <= 1, "a frame after the first was held")
        case .use(let codec):
            require(detector.decision == codec, "step uses \(codec), decision is \(String(describing: detector.decision))")
        }
        if before != nil { require(detector.decision != nil, "decision went back to undecided") }
        if nonEmpty >= 2 { require(detector.decision != nil, "undecided after two frames") }
        if let event = detector.takeEvent() {
            require(event.codec == detector.decision, "event codec differs from the decision")
            require(event.previous == before, "event previous \(String(describing: event.previous)) vs \(String(describing: before))")
            require(event.previous != event.codec, "event without a change")
            if case .frameSize(let size) = event.evidence {
                require(size == firstSize, "size evidence \(size) vs first frame \(String(describing: firstSize))")
                if size % 2 != 0 { require(event.codec != .slin, "odd first frame read as slin") }
            }
            events.append(event)
        } else {
            require(detector.decision == before, "decision changed without an event")
        }
        require(detector.takeEvent() == nil, "event reported twice")
    }
    require(held <= 1, "\(held) frames held")
    let corrections = events.filter { $0.previous != nil }
    require(corrections.filter { $0.evidence == .content }.count <= 1, "more than one correction by content")
    require(corrections.filter { if case .byteRate = $0.evidence { true } else { false } }.count <= 1,
            "more than one correction by byte rate")
    require(!corrections.contains { if case .frameSize = $0.evidence { true } else { false } }, "a correction by size")
    if let first = events.first { require(first.previous == nil, "first event is a correction") }
}
