import AVRCore
import AVRProtocol

/// The floor reference: the socket traffic of a call and nothing else, so the bench can put
/// avr-core's CPU per call-second next to what the same reads and writes cost by themselves.
/// Playback uses the same shape as avr-core's scheduler: one timer, four phase slots 5 ms
/// apart, absolute 20 ms deadlines.
final class FloorRelay {
    static let interval: UInt64 = 20_000_000
    static let slotCount = 4

    let loop: EventLoop
    let stsAddress: SocketAddress
    let handshakeRequest: [UInt8]
    /// A masked text frame the size of avr-core's audio message for 320 bytes of PCM
    /// (466 bytes), built once: `{"type":"audio","audio":"<base64 of silence>"}`.
    let stsFrame: [UInt8]
    /// 20 ms of slin silence as an AudioSocket message.
    let silence: [UInt8]
    private let listener: TCPListener
    private let timer: Timer
    private var calls: [ObjectIdentifier: FloorCall] = [:]
    private var slots: [[FloorCall]] = Array(repeating: [], count: slotCount)
    private var deadlines: [UInt64] = []
    private var scratch = [UInt8](repeating: 0, count: 3 + FrameRing.slotSize)

    init(loop: EventLoop, port: Int, stsHost: String, stsPort: Int) throws {
        self.loop = loop
        guard let address = SocketAddress(numericHost: stsHost, port: stsPort) else {
            throw UVError.invalidArgument
        }
        stsAddress = address
        handshakeRequest = WebSocketHandshake.makeRequest(
            host: "\(stsHost):\(stsPort)", requestTarget: "/", key: "dGhlIHNhbXBsZSBub25jZQ==")
        var frame: [UInt8] = []
        let pcm = [UInt8](repeating: 0, count: 320)
        pcm.withUnsafeBytes {
            STSAudioMessageEncoder.appendFrame(pcm: $0, maskingKey: WebSocketMaskingKey(0x12, 0x34, 0x56, 0x78), to: &frame)
        }
        stsFrame = frame
        silence = [0x10, 0x01, 0x40] + [UInt8](repeating: 0, count: 320)
        listener = try TCPListener(loop: loop, host: "127.0.0.1", port: port)
        timer = try Timer(loop: loop)
        listener.onConnection = { [self] stream in
            let call = FloorCall(relay: self, caller: stream)
            calls[ObjectIdentifier(call)] = call
            call.start()
        }
    }

    var port: Int { listener.port }

    func started(_ call: FloorCall) {
        var best = 0
        for slot in slots.indices where slots[slot].count < slots[best].count { best = slot }
        call.slot = best
        slots[best].append(call)
        if !timer.isActive {
            let now = loop.nanoseconds
            deadlines = (0..<Self.slotCount).map { now + UInt64($0) * Self.interval / UInt64(Self.slotCount) }
            rearm(now: now)
        }
    }

    func ended(_ call: FloorCall) {
        if call.slot >= 0 { slots[call.slot].removeAll { $0 === call } }
        call.slot = -1
        calls.removeValue(forKey: ObjectIdentifier(call))
        if slots.allSatisfy({ $0.isEmpty }) { timer.stop() }
    }

    func writeAudio(_ payload: UnsafeRawBufferPointer, to stream: TCPStream) {
        let count = payload.count
        scratch.withUnsafeMutableBytes { bytes in
            bytes[0] = 0x10
            bytes[1] = UInt8(count >> 8)
            bytes[2] = UInt8(count & 0xFF)
            bytes.baseAddress!.advanced(by: 3).copyMemory(from: payload.baseAddress!, byteCount: count)
            stream.write(UnsafeRawBufferPointer(rebasing: bytes[0..<(3 + count)]))
        }
    }

    private func tick() {
        let now = loop.nanoseconds
        for slot in 0..<Self.slotCount {
            var served = 0
            while deadlines[slot] <= now && served < 3 {
                for call in slots[slot] { call.play() }
                deadlines[slot] += Self.interval
                served += 1
            }
            if deadlines[slot] <= now { deadlines[slot] = now + Self.interval }
        }
        rearm(now: now)
    }

    private func rearm(now: UInt64) {
        guard let next = deadlines.min(), slots.contains(where: { !$0.isEmpty }) else { return }
        timer.start(timeout: next > now ? (next - now + 999_999) / 1_000_000 : 0) { [self] in tick() }
    }
}

extension UVError {
    static var invalidArgument: UVError { UVError(-22) }
}
