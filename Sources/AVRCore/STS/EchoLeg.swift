/// The built-in STS used when `STS_URL` is not set: the caller hears themselves, so an
/// operator can test the PBX integration before any AI service exists.
final class EchoLeg: STSLeg {
    weak var delegate: STSLegDelegate?

    func start() { delegate?.stsOpened() }
    func sendAudio(_ pcm: UnsafeRawBufferPointer) { delegate?.stsPCM(pcm) }
    func sendDTMF(_ digit: UInt8) {}
    func close() { delegate = nil }
}
