/// Why a client connection ended other than by the peer's orderly close.
package enum StreamFailure: Error, CustomStringConvertible {
    /// The socket failed (reset, broken pipe, …).
    case io(UVError)
    /// TLS failed after the handshake (a bad record, or the stream was truncated).
    case tls(String)

    package var description: String {
        switch self {
        case .io(let error): "\(error)"
        case .tls(let reason): "TLS: \(reason)"
        }
    }
}

/// The one surface every outbound client (STS WebSocket, streaming-HTTP STS, webhook HTTP)
/// speaks, whatever carries the bytes: plain TCP (`PlainStream`) or TLS (`TLSStream`).
/// Same contract as `TCPStream`: reads are views valid only during the call; `onEnd` runs
/// once (nil: the peer finished cleanly); `onClose` once the connection is gone.
package protocol ClientStream: AnyObject {
    var onRead: ((UnsafeRawBufferPointer) -> Void)? { get set }
    var onEnd: ((StreamFailure?) -> Void)? { get set }
    var onClose: (() -> Void)? { get set }
    /// Called when every byte queued for writing has reached the kernel (after a write that
    /// had to wait).
    var onDrain: (() -> Void)? { get set }
    /// Bytes accepted by `write` but not yet taken by the kernel: the backpressure signal.
    var pendingWriteBytes: Int { get }
    func startReading()
    func write(_ bytes: UnsafeRawBufferPointer)
    /// Closes once every byte already written has gone out (TLS: after close_notify), or
    /// after `TCPStream.flushDeadline` whatever the peer does.
    func closeAfterFlush()
    /// Closes now; unsent bytes may be dropped. Safe to call more than once.
    func close()
}

extension ClientStream {
    package func write(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { write($0) }
    }
}

/// A plain TCP connection behind the `ClientStream` surface.
final class PlainStream: ClientStream {
    let tcp: TCPStream

    init(_ tcp: TCPStream) { self.tcp = tcp }

    var onRead: ((UnsafeRawBufferPointer) -> Void)? {
        get { tcp.onRead }
        set { tcp.onRead = newValue }
    }

    var onEnd: ((StreamFailure?) -> Void)? {
        didSet {
            guard let onEnd else { tcp.onEnd = nil; return }
            tcp.onEnd = { error in onEnd(error.map(StreamFailure.io)) }
        }
    }

    var onClose: (() -> Void)? {
        get { tcp.onClose }
        set { tcp.onClose = newValue }
    }

    var onDrain: (() -> Void)? {
        get { tcp.onDrain }
        set { tcp.onDrain = newValue }
    }

    var pendingWriteBytes: Int { tcp.pendingWriteBytes }
    func startReading() { tcp.startReading() }
    func write(_ bytes: UnsafeRawBufferPointer) { tcp.write(bytes) }
    func closeAfterFlush() { tcp.closeAfterFlush() }
    func close() { tcp.close() }
}

@available(*, unavailable)
extension PlainStream: Sendable {}
