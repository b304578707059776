import AVRProtocol

// MARK: - JSON

/// The strict JSON parser. Invariants: a parsed value serialises to JSON that parses back to
/// the same value; parsing from raw memory and from a non-contiguous collection agree.
func fuzzJSONParser(_ data: UnsafeRawBufferPointer) {
    let direct = Result { () throws(JSONError) in try JSONValue.parse(data) }
    // Through a collection without contiguous storage (the copying path).
    let lazy = Result { () throws(JSONError) in try JSONValue.parse(data.lazy.map { $0 }) }
    require(direct == lazy, "raw and collection parses differ")
    guard case .success(let value) = direct else { return }
    var text: [UInt8] = []
    value.serialize(into: &text)
    let again = Result { () throws(JSONError) in try JSONValue.parse(text) }
    require(again == .success(value), "serialised value does not parse back: \(String(decoding: text, as: UTF8.self))")
}

// MARK: - STS inbound fast path + base64 + playback queue

/// The STS text-message fast path: classification, base64 decoding and queueing for
/// playback. Invariants: the fast path agrees with the general JSON parser whenever it
/// claims a message; valid base64 decodes to exactly `decodedLength` bytes and re-encodes
/// to the same text (padding bits are checked, so the form is canonical); the playback
/// queue gives back exactly the samples put in, and never holds more than its limit.
func fuzzSTSInbound(_ data: UnsafeRawBufferPointer) {
    guard let control = data.first else { return }
    let payload = UnsafeRawBufferPointer(rebasing: data[1...])
    // The queue's limit comes from the control byte, small enough to reach the wrap and
    // the overflow paths with short inputs.
    let capacityLimit = 1 + Int(control) * 3
    var queue = PlaybackQueue(capacityLimit: capacityLimit, initialCapacity: 1 + Int(control & 0x0F))

    let message = STSInboundMessage.parse(payload)
    // Text messages reach the fast path only after the assembler's UTF-8 check, and the fast
    // path does not repeat it: agreement with the JSON parser is required for valid text.
    let isText = UTF8Validator.isValid(payload)
    let general = Result { () throws(JSONError) in try JSONValue.parse(payload) }
    switch isText ? message : .needsGeneralParse {
    case .audio(let range):
        require(range.lowerBound >= 0 && range.upperBound <= payload.count, "audio range outside the payload")
        guard case .success(let value) = general, let audio = value["audio"]?.stringValue else {
            return require(false, "fast path found audio the JSON parser does not: \(general)")
        }
        require(value["type"]?.stringValue == "audio", "fast path audio, JSON type differs")
        require(audio.utf8.elementsEqual(payload[range]), "audio range differs from the JSON string")
        decodeIntoQueue(UnsafeRawBufferPointer(rebasing: payload[range]), queue: &queue, control: control)
    case .interruption:
        guard case .success(let value) = general else { return require(false, "interruption the JSON parser rejects") }
        require(value["type"]?.stringValue == "interruption" && value["audio"] == nil, "interruption misread")
    case .needsGeneralParse:
        break
    }
    // The whole payload as base64 too (most inputs are not messages).
    decodeIntoQueue(payload, queue: &queue, control: control)
}

private func decodeIntoQueue(_ base64: UnsafeRawBufferPointer, queue: inout PlaybackQueue, control: UInt8) {
    var pcm: [UInt8] = [0xEE] // decoding appends; what was there must stay
    let expectedLength = Result { () throws(Base64Error) in try Base64.decodedLength(of: base64) }
    do throws(Base64Error) {
        try Base64.decode(base64, appendingTo: &pcm)
    } catch {
        require(pcm == [0xEE], "failed decode changed the output")
        return
    }
    require(pcm.first == 0xEE, "decode overwrote existing output")
    pcm.removeFirst()
    require(expectedLength == .success(pcm.count), "decoded \(pcm.count) bytes, decodedLength said \(expectedLength)")
    var reencoded: [UInt8] = []
    pcm.withUnsafeBytes { Base64.encode($0, appendingTo: &reencoded) }
    require(reencoded.elementsEqual(base64), "base64 does not re-encode to itself")

    // Into the playback queue, in two appends split where the control byte says (an odd
    // split leaves half a sample pending), then drained 160 samples at a time.
    let before = queue.queuedSamples
    let cut = pcm.isEmpty ? 0 : Int(control) % (pcm.count + 1)
    pcm.withUnsafeBytes { bytes in
        queue.append(pcmLittleEndian: UnsafeRawBufferPointer(rebasing: bytes[..<cut]))
        queue.append(pcmLittleEndian: UnsafeRawBufferPointer(rebasing: bytes[cut...]))
    }
    require(queue.queuedSamples <= queue.capacityLimit, "queue over its limit")
    let added = pcm.count / 2
    if before + added <= queue.capacityLimit {
        require(queue.queuedSamples == before + added, "queued \(queue.queuedSamples), expected \(before + added)")
    }
    // The newest samples must be the last ones queued.
    var frame = [Int16](repeating: 0, count: 160)
    var drained: [Int16] = []
    while frame.withUnsafeMutableBufferPointer({ queue.nextFrame(into: $0) }) {
        drained += frame
    }
    require(queue.isEmpty && queue.queuedSamples == 0, "queue not empty after draining")
    let kept = min(before + added, queue.capacityLimit)
    let tail = drained.prefix(kept).suffix(min(added, kept))
    let samples = stride(from: 0, to: 2 * added, by: 2).map { Int16(bitPattern: UInt16(pcm[$0]) | UInt16(pcm[$0 + 1]) << 8) }
    require(tail.elementsEqual(samples.suffix(tail.count)), "queue did not give back the newest samples")
    queue.clear()
}

// MARK: - URL handling

/// `EndpointURL.parse` and `EffectiveSTSURL.make`. The input is a base URL, then a 0x00
/// byte, then a JSON payload. Invariants: a parsed URL has a port in 1…65535 and a request
/// target starting with `/`, and its description parses back to the same URL; adding query
/// parameters to a valid base keeps it valid, with the same scheme, host and port.
func fuzzURL(_ data: UnsafeRawBufferPointer) {
    let separator = data.firstIndex(of: 0) ?? data.count
    let base = String(decoding: data[..<separator], as: UTF8.self)
    let payloadBytes = separator < data.count ? UnsafeRawBufferPointer(rebasing: data[(separator + 1)...]) : UnsafeRawBufferPointer(start: nil, count: 0)
    let parsed = Result { () throws(EndpointURLError) in try EndpointURL.parse(base) }
    if case .success(let url) = parsed {
        require((1...65535).contains(url.port), "port \(url.port)")
        require(url.requestTarget.hasPrefix("/"), "request target \(url.requestTarget)")
        require(!url.host.isEmpty, "empty host")
        let again = Result { () throws(EndpointURLError) in try EndpointURL.parse(url.description) }
        require(again == .success(url), "description \(url.description) does not parse back")
        _ = url.hostHeader
    }
    let payload: JSONObject
    if case .success(let value) = Result(catching: { () throws(JSONError) in try JSONValue.parse(payloadBytes) }),
       let object = value.objectValue {
        payload = object
    } else {
        payload = [:]
    }
    let effective = EffectiveSTSURL.make(base: base, payload: payload)
    if case .success(let url) = parsed {
        let result = Result { () throws(EndpointURLError) in try EndpointURL.parse(effective) }
        guard case .success(let made) = result else {
            return require(false, "\(effective) from valid \(base) does not parse: \(result)")
        }
        require(made.scheme == url.scheme && made.host == url.host && made.port == url.port && made.fragment == url.fragment,
                "\(effective) changed the endpoint of \(base)")
        if payload.isEmpty { require(made.query == url.query, "query changed without parameters") }
    }
}
