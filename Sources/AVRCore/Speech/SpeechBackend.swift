// STAND-IN (backend branch): the contract's declarations, until the lead's speech seam lands
// on main (take main's version at merge).
import AVRProtocol

enum SpeechFailure: Error {
    case pipeline(PipelineFailure)
}

enum SpeechCloseReason {
    case finished
    case failed(SpeechFailure)
}

protocol SpeechBackendDelegate: AnyObject {
    func speechOpened()
    func speechAgentAudio(pcm: UnsafeRawBufferPointer)
    func speechInterrupted()
    func speechTranscript(role: TranscriptRole, text: String)
    func speechError(_ error: SpeechFailure)
    func speechClosed(_ reason: SpeechCloseReason)
    var agentQueuedSamples: Int { get }
}

protocol SpeechBackend: AnyObject {
    var delegate: SpeechBackendDelegate? { get set }
    func start()
    func sendCallerAudio(_ pcm: UnsafeRawBufferPointer)
    func sendDTMF(_ digit: UInt8)
    func agentFramePlayed(_ samples: UnsafeBufferPointer<Int16>)
    func close()
}
