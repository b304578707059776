import Testing
@testable import AVRProtocol

@Suite struct AudioSocketConnectionStateMachineTests {
    typealias Machine = AudioSocketConnectionStateMachine
    static let uuid = CallUUID(string: "935652e3-7c59-4edc-b17f-9646a9c2a265")!
    static let audio = AudioSocketAudio(kind: .audio8kHz, payloadLength: 320)
    static let five = DTMFDigit(ascii: UInt8(ascii: "5"))!

    @Test func normalCallEndedByCallerClosingTheSocket() {
        var machine = Machine()
        #expect(machine.state == .awaitingUUID)
        #expect(machine.receivedFrame(.uuid(Self.uuid)) == .startCall(Self.uuid))
        #expect(machine.state == .active(Self.uuid))
        #expect(machine.receivedFrame(.audio(Self.audio)) == .forwardAudio(Self.audio))
        #expect(machine.receivedFrame(.dtmf(Self.five)) == .forwardDTMF(Self.five))
        #expect(machine.receivedFrame(.audio(Self.audio)) == .forwardAudio(Self.audio))
        #expect(machine.socketClosed() == .hangup(.peerClosed))
        #expect(machine.state == .closed)
        #expect(machine.socketClosed() == .ignore)
        #expect(machine.receivedFrame(.audio(Self.audio)) == .ignore)
        #expect(machine.hangupRequested() == .ignore)
    }

    @Test func peerHangupThenClose() {
        var machine = Machine()
        _ = machine.receivedFrame(.uuid(Self.uuid))
        #expect(machine.receivedFrame(.hangup) == .hangup(.peerHangup))
        #expect(machine.socketClosed() == .ignore)
    }

    @Test func peerErrorCarriesItsCode() {
        var machine = Machine()
        _ = machine.receivedFrame(.uuid(Self.uuid))
        #expect(machine.receivedFrame(.error(code: [0x04])) == .hangup(.peerError(code: [0x04])))
        #expect(machine.receivedFrame(.error(code: [])) == .ignore)
        var early = Machine()
        #expect(early.receivedFrame(.error(code: [])) == .hangup(.peerError(code: [])))
    }

    @Test func framesBeforeUUIDAreViolations() {
        var audioFirst = Machine()
        #expect(audioFirst.receivedFrame(.audio(Self.audio)) == .hangup(.protocolViolation(.frameBeforeUUID(.audio8kHz))))
        #expect(audioFirst.receivedFrame(.uuid(Self.uuid)) == .ignore)
        #expect(audioFirst.state == .closed)

        var dtmfFirst = Machine()
        #expect(dtmfFirst.receivedFrame(.dtmf(Self.five)) == .hangup(.protocolViolation(.frameBeforeUUID(.dtmf))))

        var hangupFirst = Machine()
        #expect(hangupFirst.receivedFrame(.hangup) == .hangup(.peerHangup))
    }

    @Test func secondUUIDIsAViolation() {
        var machine = Machine()
        _ = machine.receivedFrame(.uuid(Self.uuid))
        #expect(machine.receivedFrame(.uuid(Self.uuid)) == .hangup(.protocolViolation(.duplicateUUID)))
        #expect(machine.socketClosed() == .ignore)
    }

    @Test func malformedBytes() {
        var machine = Machine()
        #expect(machine.receivedMalformedBytes(.unknownKind(0x47)) == .hangup(.protocolViolation(.malformed(.unknownKind(0x47)))))
        #expect(machine.receivedMalformedBytes(.unknownKind(0x47)) == .ignore)
        #expect(machine.socketClosed() == .ignore)
    }

    @Test func localHangupOnce() {
        var machine = Machine()
        _ = machine.receivedFrame(.uuid(Self.uuid))
        #expect(machine.hangupRequested() == .hangup(.local))
        #expect(machine.hangupRequested() == .ignore)
        #expect(machine.socketClosed() == .ignore)
        #expect(machine.receivedFrame(.hangup) == .ignore)
    }

    @Test func closeBeforeUUID() {
        var machine = Machine()
        #expect(machine.socketClosed() == .hangup(.peerClosed))
        #expect(machine.socketClosed() == .ignore)
    }

    @Test func decoderToMachineTranscript() throws {
        var bytes: [UInt8] = [0x01, 0x00, 0x10] + Self.uuid.bytes
        bytes += [0x10, 0x00, 0x02, 0x01, 0x00, 0x03, 0x00, 0x01, 0x39, 0x00, 0x00, 0x00, 0x10, 0x00, 0x02, 0x00, 0x00]
        var decoder = AudioSocketDecoder()
        var buffer = ByteBuffer(bytes: bytes)
        var machine = Machine()
        var actions: [Machine.Action] = []
        while let frame = try decoder.decode(&buffer) {
            actions.append(machine.receivedFrame(frame))
        }
        actions.append(machine.socketClosed())
        #expect(actions == [
            .startCall(Self.uuid),
            .forwardAudio(AudioSocketAudio(kind: .audio8kHz, payloadLength: 2)),
            .forwardDTMF(DTMFDigit(ascii: UInt8(ascii: "9"))!),
            .hangup(.peerHangup),
            .ignore,
            .ignore,
        ])
    }

    @Test func invalidDTMFIsIgnoredNotAHangup() {
        var machine = Machine()
        _ = machine.receivedFrame(.uuid(CallUUID(high: 1, low: 2)))
        #expect(machine.receivedFrame(.invalidDTMF(0x45)) == .ignoreInvalidDTMF(0x45))
        #expect(machine.receivedFrame(.dtmf(Self.five)) == .forwardDTMF(Self.five))
        #expect(machine.state == .active(CallUUID(high: 1, low: 2)))
        var early = Machine()
        #expect(early.receivedFrame(.invalidDTMF(0x45)) == .hangup(.protocolViolation(.frameBeforeUUID(.dtmf))))
    }

    @Test func dtmfDigitValidation() {
        #expect(DTMFDigit(ascii: UInt8(ascii: "#"))?.character == "#")
        #expect(DTMFDigit(ascii: UInt8(ascii: "D"))?.description == "D")
        #expect(DTMFDigit(ascii: UInt8(ascii: "E")) == nil)
        #expect(DTMFDigit(ascii: UInt8(ascii: "d")) == nil)
        #expect((0...255).filter { DTMFDigit(ascii: UInt8($0)) != nil }.count == 16)
    }
}
