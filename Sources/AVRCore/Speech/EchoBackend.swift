import AVRProtocol

/// The built-in backend used when no speech service is configured: the caller hears
/// themselves, so an operator can test the PBX integration before any AI service exists.
final class EchoBackend: SpeechBackend {
    weak var delegate: SpeechBackendDelegate?
    var kind: SpeechBackendKind { .echo }
    /// The caller hears what they say now, not what they said while the route was claimed.
    var takesHeldAudio: Bool { false }

    func start() { delegate?.speechOpened() }
    func sendCallerAudio(_ pcm: UnsafeRawBufferPointer) { delegate?.speechAgentAudio(pcm: pcm) }
    func sendDTMF(_ digit: UInt8) {}
    func close() { delegate = nil }
}
