import AVRProtocol

/// Per-loop resources every call on the loop shares. One thread runs all of them, so one
/// scratch buffer serves every call: frames are built here and handed to `TCPStream.write`,
/// which copies only what the kernel does not take at once.
final class LoopScratch {
    var maskingKeys = WebSocketMaskingKeySource()
    /// Outgoing WebSocket frames.
    var frame: [UInt8] = []
    /// Caller PCM after codec decoding / resampling (8 kHz s16le).
    var pcm: [UInt8] = []
    /// One 20 ms playback frame of samples.
    let samples: UnsafeMutableBufferPointer<Int16>
    /// One outgoing AudioSocket audio message (header + up to 320 bytes).
    let audioMessage: UnsafeMutableRawBufferPointer

    static let samplesPerFrame = 160

    init() {
        frame.reserveCapacity(4096)
        pcm.reserveCapacity(4096)
        samples = .allocate(capacity: Self.samplesPerFrame)
        samples.initialize(repeating: 0)
        audioMessage = .allocate(byteCount: 3 + 2 * Self.samplesPerFrame, alignment: 16)
    }

    deinit {
        samples.deallocate()
        audioMessage.deallocate()
    }
}
