import AVRProtocol

/// What a call hears from its STS service. The session decodes audio straight into its
/// playback queue; everything else is an event.
protocol STSLegDelegate: AnyObject {
    /// The leg is ready; caller audio is flowing to the service.
    func stsOpened()
    /// Base64 of 8 kHz s16le PCM, valid during the call only.
    func stsAudio(base64: UnsafeRawBufferPointer)
    /// Raw 8 kHz s16le PCM (streaming HTTP and echo legs), valid during the call only.
    func stsPCM(_ pcm: UnsafeRawBufferPointer)
    func stsInterruption()
    /// Any other message (transcript, error, unknown types).
    func stsMessage(_ message: JSONValue)
    /// The service went away or could not be reached; `failure` nil for an orderly close.
    func stsClosed(failure: String?)
}

/// One call's connection to its STS service (WebSocket, streaming HTTP, or the built-in echo).
protocol STSLeg: AnyObject {
    var delegate: STSLegDelegate? { get set }
    func start()
    /// One caller frame of 8 kHz s16le PCM; kept (bounded) while the leg is still opening.
    func sendAudio(_ pcm: UnsafeRawBufferPointer)
    func sendDTMF(_ digit: UInt8)
    /// The caller hung up: close politely and release everything; no delegate calls follow.
    func close()
}

/// Caller audio held back for a while (until the STS connection opens, until the codec is
/// known), in order, so the first words are not lost.
/// Bounded: beyond `capacity` bytes the oldest audio is dropped (and counted).
struct HeldAudio {
    let capacity: Int
    private(set) var bytes: [UInt8] = []
    private(set) var frameLengths: [Int] = []
    private(set) var droppedBytes = 0

    init(capacity: Int) { self.capacity = capacity }

    mutating func append(_ pcm: UnsafeRawBufferPointer) {
        bytes.append(contentsOf: pcm)
        frameLengths.append(pcm.count)
        var excess = bytes.count - capacity
        var dropFrames = 0
        while excess > 0, dropFrames < frameLengths.count {
            excess -= frameLengths[dropFrames]
            dropFrames += 1
        }
        if dropFrames > 0 {
            let dropBytes = frameLengths[..<dropFrames].reduce(0, +)
            droppedBytes += dropBytes
            bytes.removeFirst(dropBytes)
            frameLengths.removeFirst(dropFrames)
        }
    }

    /// Hands back each held frame in order and forgets them.
    mutating func drain(_ body: (UnsafeRawBufferPointer) -> Void) {
        bytes.withUnsafeBytes { all in
            var offset = 0
            for length in frameLengths {
                body(UnsafeRawBufferPointer(rebasing: all[offset..<(offset + length)]))
                offset += length
            }
        }
        bytes = []
        frameLengths = []
    }
}

/// The leg of a call whose route is still being claimed from the shared registry: caller
/// audio and DTMF are held (3 s, as before an STS connection opens) and handed to the real
/// leg once the route is known.
final class HoldingLeg: STSLeg {
    weak var delegate: STSLegDelegate?
    private(set) var held = HeldAudio(capacity: 3 * 16_000)
    private(set) var digits: [UInt8] = []

    func start() {}
    func sendAudio(_ pcm: UnsafeRawBufferPointer) { held.append(pcm) }
    func sendDTMF(_ digit: UInt8) { digits.append(digit) }
    func close() { delegate = nil }

    /// Hands what was held to `leg`, in order.
    func release(into leg: STSLeg) {
        held.drain { leg.sendAudio($0) }
        for digit in digits { leg.sendDTMF(digit) }
        digits = []
    }
}
