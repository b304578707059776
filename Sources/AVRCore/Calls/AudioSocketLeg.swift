import AVRProtocol

/// A call's AudioSocket connection (the `PORT` listener): frames are decoded in place from
/// each read (`AudioSocketFrameReader`), `AudioSocketConnectionStateMachine` decides, the
/// session is told. Playback goes out as 8 kHz slin `0x10` messages (Asterisk reads every
/// server `0x10` as slin, whatever the channel's codec).
final class AudioSocketLeg: CallerLeg {
    private let stream: TCPStream
    private let scratch: LoopScratch
    /// Decodes frames in place from each read; keeps only an incomplete one.
    private var reader = AudioSocketFrameReader()
    private var machine = AudioSocketConnectionStateMachine()
    private weak var session: CallSession?

    init(stream: TCPStream, scratch: LoopScratch) {
        self.stream = stream
        self.scratch = scratch
    }

    var peerAddress: SocketAddress? { stream.peerAddress }

    func start(_ session: CallSession) {
        self.session = session
        stream.onRead = { [weak self] bytes in self?.received(bytes) }
        stream.onEnd = { [weak self] error in
            guard let self else { return }
            if let error { self.session?.log.debug("AudioSocket connection failed: \(error)") }
            self.perform(self.machine.socketClosed())
        }
        stream.onClose = { [weak self] in self?.session?.legClosed() }
        stream.startReading()
    }

    private var ended: Bool { session?.ended ?? true }

    private func received(_ bytes: UnsafeRawBufferPointer) {
        do throws(AudioSocketError) {
            try reader.read(bytes) { frame, payload in
                guard !ended else { return false }
                perform(machine.receivedFrame(frame), payload: payload)
                return !ended
            }
        } catch {
            perform(machine.receivedMalformedBytes(error))
        }
        if ended { reader.releaseStorage() }
    }

    private func perform(_ action: AudioSocketConnectionStateMachine.Action, payload: UnsafeRawBufferPointer? = nil) {
        guard let session else { return }
        switch action {
        case .startCall(let uuid):
            session.callerIdentified(uuid)
        case .forwardAudio(let audio):
            if let payload { session.callerAudio(kind: audio.kind, payload: payload) }
        case .forwardDTMF(let digit):
            session.callerDTMF(digit)
        case .ignoreInvalidDTMF(let byte):
            session.log.limited(.invalidDTMF, .warn,
                                "Ignoring a DTMF message with byte 0x\(String(byte, radix: 16, uppercase: true)), which is no DTMF key")
        case .hangup(let reason):
            session.end(CallSession.EndReason(reason))
        case .ignore:
            break
        }
    }

    func sendAgentFrame(_ frame: UnsafeMutableBufferPointer<Int16>) -> Bool {
        // Asterisk not reading: drop rather than queue without bound.
        if stream.pendingWriteBytes > 16 * 1024 { return false }
        let length = AudioSocketEncoder.encodeAudioMessage(samples: UnsafeBufferPointer(frame), into: scratch.audioMessage)
        stream.write(UnsafeRawBufferPointer(rebasing: scratch.audioMessage[0..<length]))
        return true
    }

    /// AudioSocket has no queue on the Asterisk side to flush: the playout queue is all.
    func agentAudioFlushed() {}

    func close(hangup: Bool) {
        _ = machine.hangupRequested()
        if hangup && !stream.isClosing {
            var message: [UInt8] = []
            AudioSocketEncoder.appendHangup(to: &message)
            stream.write(message)
            stream.closeAfterFlush()
        } else {
            stream.close()
        }
    }
}
