import AVRProtocol

/// The caller's side of a call: the connection from Asterisk that carries the caller's audio
/// in and the agent's audio out. `CallSession` is everything downstream (backend, playout,
/// webhooks, metrics) and does not know which protocol the leg speaks: an AudioSocket
/// connection (`AudioSocketLeg`, the `PORT` listener) or Asterisk's WebSocket channel on the
/// HTTP port (`WebSocketMediaLeg`, `/media`).
///
/// A leg reports to its session: `callerIdentified` (the call's UUID is known),
/// `callerAudio`, `callerDTMF`, `end` (the caller ended the call, or broke the protocol) and
/// `legClosed` (the connection is gone).
protocol CallerLeg: AnyObject {
    /// Where the connection comes from (for log lines).
    var peerAddress: SocketAddress? { get }
    /// Starts reading; events go to `session`, which owns the leg.
    func start(_ session: CallSession)
    /// Writes one frame of agent audio (8 kHz samples; the leg converts it to what the caller
    /// takes). False when it was dropped because Asterisk is not reading.
    func sendAgentFrame(_ frame: UnsafeMutableBufferPointer<Int16>) -> Bool
    /// The channel's queue paces the agent's audio (`WS_MEDIA_PACING=asterisk`): the session
    /// sends every whole frame queued while `mayWrite(at:)`, and plays its own tick (a tail,
    /// silence on an idle line) only when `channelNearlyDrained(at:)`.
    var sendsAhead: Bool { get }
    /// A frame written at `now` would be sent (with `sendsAhead`; not after `MEDIA_XOFF` until
    /// `MEDIA_XON`, nor with a backlog on the socket, nor past what the channel may hold).
    func mayWrite(at now: UInt64) -> Bool
    /// With `sendsAhead`: the channel has at most the frame it is playing left of ours.
    func channelNearlyDrained(at now: UInt64) -> Bool
    /// With `sendsAhead`: 8 kHz samples of agent audio the channel still holds to play at `now`
    /// (by the estimate), which count as the agent still speaking.
    func channelHeldSamples(at now: UInt64) -> Int
    /// The agent was interrupted: whatever of its audio the leg or Asterisk still holds goes.
    func agentAudioFlushed()
    /// Ends the connection, telling Asterisk to hang up first when `hangup` (it did not end
    /// the call itself).
    func close(hangup: Bool)
}

extension CallerLeg {
    var sendsAhead: Bool { false }
    func mayWrite(at now: UInt64) -> Bool { true }
    func channelNearlyDrained(at now: UInt64) -> Bool { true }
    func channelHeldSamples(at now: UInt64) -> Int { 0 }
}
