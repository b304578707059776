/// The `WS_MEDIA_PACING` setting: who paces the agent's audio on Asterisk's WebSocket channel.
package enum MediaPacing: String, Sendable, CaseIterable {
    /// One 20 ms frame per playback tick, so the channel's queue stays near empty (the default).
    case core
    /// Every whole frame queued goes as soon as it may; the channel's queue paces it, and its
    /// `MEDIA_XOFF`/`MEDIA_XON` stop and resume the sending (nothing is dropped meanwhile).
    case asterisk
}
