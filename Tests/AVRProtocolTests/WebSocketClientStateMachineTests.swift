import Testing
@testable import AVRProtocol

@Suite struct WebSocketClientStateMachineTests {
    @Test func serverClosesAfterConversation() {
        var machine = WebSocketClientStateMachine()
        #expect(!machine.canSendMessages)
        #expect(machine.connected() == .sendHandshakeRequest)
        #expect(machine.handshakeCompleted() == .deliverOpen)
        #expect(machine.canSendMessages)
        #expect(machine.receivedClose(code: .goingAway) == .sendClose(.goingAway, thenCloseConnection: true))
        #expect(!machine.canSendMessages)
        #expect(machine.connectionClosed() == .reportClosed(.goingAway))
        #expect(machine.state == .closed)
        #expect(machine.connectionClosed() == .none)
    }

    @Test func serverClosesWithoutStatus() {
        var machine = WebSocketClientStateMachine()
        _ = machine.connected()
        _ = machine.handshakeCompleted()
        #expect(machine.receivedClose(code: nil) == .sendClose(.normalClosure, thenCloseConnection: true))
        #expect(machine.connectionClosed() == .reportClosed(.noStatusReceived))
    }

    @Test func callerHangsUp() {
        var machine = WebSocketClientStateMachine()
        _ = machine.connected()
        _ = machine.handshakeCompleted()
        #expect(machine.sendCloseRequested() == .sendClose(.normalClosure, thenCloseConnection: false))
        #expect(machine.sendCloseRequested() == .none)
        #expect(machine.receivedClose(code: .normalClosure) == .closeConnection)
        #expect(machine.connectionClosed() == .reportClosed(.normalClosure))
    }

    @Test func closeNotAnswered() {
        var machine = WebSocketClientStateMachine()
        _ = machine.connected()
        _ = machine.handshakeCompleted()
        _ = machine.sendCloseRequested(code: .goingAway)
        #expect(machine.closeTimedOut() == .closeConnection)
        #expect(machine.connectionClosed() == .reportClosed(.goingAway))
    }

    @Test func protocolErrorFailsTheConnection() {
        var machine = WebSocketClientStateMachine()
        _ = machine.connected()
        _ = machine.handshakeCompleted()
        #expect(machine.receivedFrameError(.invalidUTF8) == .sendClose(.invalidFramePayloadData, thenCloseConnection: true))
        #expect(machine.connectionClosed() == .reportClosed(.invalidFramePayloadData))
    }

    @Test func abruptDropAndRefusedHandshake() {
        var dropped = WebSocketClientStateMachine()
        _ = dropped.connected()
        _ = dropped.handshakeCompleted()
        #expect(dropped.connectionClosed() == .reportClosed(.abnormalClosure))

        var refused = WebSocketClientStateMachine()
        _ = refused.connected()
        #expect(refused.handshakeFailed() == .closeConnection)
        #expect(refused.handshakeCompleted() == .none)
        #expect(refused.connectionClosed() == .reportClosed(.abnormalClosure))

        var early = WebSocketClientStateMachine()
        #expect(early.sendCloseRequested() == .closeConnection)
        #expect(early.handshakeCompleted() == .none)
        #expect(early.connectionClosed() == .reportClosed(.normalClosure))
    }
}
