import AVRProtocol

/// The barge-in detector fed caller and agent frames of any length and content.
/// Input: byte 0 picks the configuration (bits 0-1 frame samples 160/80/240/256, bits 2-3 min
/// speech frames 1-4, bits 4-6 redemption frames 1-8, bit 7 pre-speech pad 0/5); byte 1 the
/// thresholds (positive = (b & 0x7F + 1)/128, negative = positive/2 or positive). Then records
/// [op, n] + n samples s16le (fewer if the input ends): op bit 0 = agent (else caller), bits 1-2
/// a gain of ×1/×16/×256/×4096 (clamped, for loud and clipped frames), bits 3-7 how many times
/// the record is fed (1-32, so stationary stretches reach the noise tracker's windows).
/// Invariants: every returned event is exactly the change of `speaking`; probabilities within
/// [0, 1]; a frame gated as echo has probability 0, and never more than the raw one;
/// `onsetFramesAgo` 0 unless speaking, at least the pad when speaking; `analysedFrames` is the
/// caller samples / frame samples; the raw probability does not depend on the agent frames;
/// without agent frames nothing is gated, and the same caller samples fed in other chunk sizes
/// give the same analysed frames, raw probability and `speaking`. At most 2 s of caller audio.
func fuzzBargeInDetector(_ data: UnsafeRawBufferPointer) {
    guard data.count >= 2 else { return }
    var configuration = VADConfiguration()
    configuration.frameSamples = [160, 80, 240, 256][Int(data[0] & 3)]
    configuration.minSpeechFrames = Int(data[0] >> 2 & 3) + 1
    configuration.redemptionFrames = Int(data[0] >> 4 & 7) + 1
    configuration.preSpeechPadFrames = data[0] & 0x80 != 0 ? 5 : 0
    configuration.positiveSpeechThreshold = Float(Int(data[1] & 0x7F) + 1) / 128
    configuration.negativeSpeechThreshold = configuration.positiveSpeechThreshold * (data[1] & 0x80 != 0 ? 1 : 0.5)

    var withAgent = BargeInDetector(configuration: configuration)
    var callerOnly = BargeInDetector(configuration: configuration)
    var stream: [Int16] = []
    var frame = [Int16](repeating: 0, count: 255)
    var callerSamples = 0
    var offset = 2
    // At most 2 s of caller audio per input (100 frames: past the warm-up and several turns of
    // the noise tracker's windows), so the fuzzer keeps a useful rate.
    while offset + 2 <= data.count, callerSamples < 16_000 {
        let op = data[offset], count = Int(data[offset + 1])
        offset += 2
        let available = min(count, (data.count - offset) / 2)
        let gain = [1, 16, 256, 4096][Int(op >> 1 & 3)]
        for index in 0..<available {
            let raw = Int(Int16(bitPattern: UInt16(data[offset + 2 * index]) | UInt16(data[offset + 2 * index + 1]) << 8))
            frame[index] = Int16(clamping: raw * gain)
        }
        offset += 2 * available
        for _ in 0..<(Int(op >> 3) + 1) {
            frame.withUnsafeBufferPointer { whole in
                let samples = UnsafeBufferPointer(rebasing: whole[0..<available])
                if op & 1 != 0 {
                    withAgent.agentPlayed(samples)
                    return
                }
                stream.append(contentsOf: samples)
                callerSamples += available
                step(&withAgent, samples, echoPossible: true)
                step(&callerOnly, samples, echoPossible: false)
                require(withAgent.analysedFrames == callerSamples / configuration.frameSamples,
                        "analysed \(withAgent.analysedFrames) of \(callerSamples) samples")
                require(withAgent.lastRawProbability == callerOnly.lastRawProbability, "raw probability depends on the agent")
            }
        }
    }
    // The same caller samples in chunks of 97.
    var rechunked = BargeInDetector(configuration: configuration)
    stream.withUnsafeBufferPointer { all in
        var start = 0
        while start < all.count {
            let end = min(start + 97, all.count)
            step(&rechunked, UnsafeBufferPointer(rebasing: all[start..<end]), echoPossible: false)
            start = end
        }
    }
    require(rechunked.analysedFrames == callerOnly.analysedFrames, "chunking changed the analysed frames")
    require(rechunked.lastRawProbability == callerOnly.lastRawProbability, "chunking changed the probability")
    require(rechunked.speaking == callerOnly.speaking, "chunking changed speaking")
}

private func step(_ detector: inout BargeInDetector, _ samples: UnsafeBufferPointer<Int16>, echoPossible: Bool) {
    let before = detector.speaking
    let event = detector.callerFrame(samples)
    let after = detector.speaking
    switch event {
    case .speechStarted: require(!before && after, "speechStarted without a change")
    case .speechEnded: require(before && !after, "speechEnded without a change")
    case nil: require(before == after, "speaking changed without an event")
    }
    let p = detector.lastProbability, raw = detector.lastRawProbability
    require(p >= 0 && p <= 1 && raw >= 0 && raw <= 1, "probability \(p) / \(raw)")
    require(p <= raw, "gated probability above the raw one")
    if detector.lastFrameWasEcho { require(p == 0, "an echo frame with probability \(p)") }
    if !echoPossible { require(!detector.lastFrameWasEcho && p == raw, "gated without an agent") }
    if after {
        require(detector.onsetFramesAgo >= detector.configuration.preSpeechPadFrames, "onset inside the pad")
    } else {
        require(detector.onsetFramesAgo == 0, "onset while not speaking")
    }
}
