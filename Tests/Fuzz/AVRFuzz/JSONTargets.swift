@testable import AVRCore
import AVRProtocol

// MARK: - JSON

/// The strict JSON parser, and the `POST /call` body check built on it. Invariants: a parsed
/// value serialises to JSON that parses back to the same value; parsing from raw memory and
/// from a non-contiguous collection agree; an accepted call body has an object `payload` and
/// a `uuid` whose text and byte forms round-trip.
func fuzzJSONParser(_ data: UnsafeRawBufferPointer) {
    let direct = Result { () throws(JSONError) in try JSONValue.parse(data) }
    // Through a collection without contiguous storage (the copying path).
    let lazy = Result { () throws(JSONError) in try JSONValue.parse(data.lazy.map { $0 }) }
    require(direct == lazy, "raw and collection parses differ")
    // The `POST /call` body check on the same bytes: a success carries a UUID that
    // round-trips through its text form and the body's own `payload` object.
    if case .success((let uuid, let payload)) = CallHTTPService.parseCallBody(Array(data)) {
        require(CallUUID(string: uuid.description) == uuid, "UUID text does not round-trip")
        require(CallUUID(bytes: uuid.bytes) == uuid, "UUID bytes do not round-trip")
        guard case .success(let value) = direct, let object = value.objectValue else { return require(false, "accepted a non-object body") }
        require(object["payload"]?.objectValue == payload, "payload differs from the body's")
        require(object["uuid"]?.stringValue.flatMap { CallUUID(string: $0) } == uuid, "uuid differs from the body's")
    }
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
/// queue behaves as a plain-array model of it (drop on arrival past the limit, odd bytes
/// held), never holds more than its limit, and shrinks once drained.
func fuzzSTSInbound(_ data: UnsafeRawBufferPointer) {
    guard let control = data.first else { return }
    let payload = UnsafeRawBufferPointer(rebasing: data[1...])

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
        decodeIntoQueue(UnsafeRawBufferPointer(rebasing: payload[range]), control: control)
    case .interruption:
        guard case .success(let value) = general else { return require(false, "interruption the JSON parser rejects") }
        require(value["type"]?.stringValue == "interruption" && value["audio"] == nil, "interruption misread")
    case .needsGeneralParse:
        break
    }
    // The whole payload as base64 too (most inputs are not messages).
    decodeIntoQueue(payload, control: control)
}

private func decodeIntoQueue(_ base64: UnsafeRawBufferPointer, control: UInt8) {
    // The queue's limits come from the control byte, small enough to reach the wrap, grow,
    // shrink and overflow paths with short inputs.
    var queue = PlaybackQueue(capacityLimit: 1 + Int(control) * 3, initialCapacity: 1 + Int(control & 0x0F),
                              shrinkThreshold: Int(control >> 4) * 16)
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

    // Into the playback queue as the call session does, checked against a plain-array model
    // of it: two appends split where the control byte says (an odd split leaves half a
    // sample pending), one 20 ms frame taken in between, then drained.
    let cut = pcm.isEmpty ? 0 : Int(control) % (pcm.count + 1)
    var model = QueueModel(limit: queue.capacityLimit)
    var frame = [Int16](repeating: 0, count: 160)
    func takeFrame() -> Bool {
        let got = frame.withUnsafeMutableBufferPointer { queue.nextFrame(into: $0) }
        let expected = model.nextFrame()
        require(got == (expected != nil), "nextFrame returned \(got), model has \(model.samples.count)")
        if let expected { require(frame == expected, "frame differs from the model") }
        return got
    }
    func check() {
        require(queue.queuedSamples == model.samples.count, "queued \(queue.queuedSamples), model \(model.samples.count)")
        require(queue.droppedSamples == model.dropped, "dropped \(queue.droppedSamples), model \(model.dropped)")
        require(queue.storageCapacity <= queue.capacityLimit, "storage past the limit")
    }
    pcm.withUnsafeBytes { bytes in
        let first = UnsafeRawBufferPointer(rebasing: bytes[..<cut])
        queue.append(pcmLittleEndian: first)
        model.append(first)
        check()
        _ = takeFrame()
        check()
        let second = UnsafeRawBufferPointer(rebasing: bytes[cut...])
        queue.append(pcmLittleEndian: second)
        model.append(second)
        check()
    }
    while takeFrame() {}
    check()
    require(queue.isEmpty, "queue not empty after draining")
    require(queue.storageCapacity <= queue.shrinkThreshold, "drained ring did not shrink")
}

/// What `PlaybackQueue` promises, as a plain array: samples past the limit are dropped on
/// arrival (the queued ones play on), an odd byte waits for its partner.
private struct QueueModel {
    let limit: Int
    var dropped = 0
    var samples: [Int16] = []
    var pending: UInt8?

    init(limit: Int, dropped: Int = 0) {
        self.limit = limit
        self.dropped = dropped
    }

    mutating func append(_ bytes: UnsafeRawBufferPointer) {
        for byte in bytes {
            if let low = pending {
                pending = nil
                if samples.count < limit { samples.append(Int16(bitPattern: UInt16(low) | UInt16(byte) << 8)) } else { dropped += 1 }
            } else {
                pending = byte
            }
        }
    }

    mutating func nextFrame() -> [Int16]? {
        guard !samples.isEmpty else { return nil }
        let count = min(160, samples.count)
        let frame = Array(samples[..<count]) + [Int16](repeating: 0, count: 160 - count)
        samples.removeFirst(count)
        return frame
    }
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
