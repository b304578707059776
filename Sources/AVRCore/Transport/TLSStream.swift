internal import CTLS

/// A TLS connection over a `TCPStream`, on the same loop: ciphertext read from the socket
/// is fed to OpenSSL through a memory buffer and the plaintext it yields is handed to
/// `onRead`; plaintext written is encrypted into a memory buffer and written to the socket.
/// Nothing blocks and nothing runs on another thread.
///
/// The peer's end of the stream is clean only after its close_notify; a TCP end without it
/// is reported as truncation. Closing sends close_notify (when the handshake completed).
package final class TLSStream: ClientStream {
    private let tcp: TCPStream
    private let client: TLSClient
    private let session: OpaquePointer
    private let origin: String
    /// Handshake and life (`TLSStreamState.swift`).
    private(set) var state = State.open(.handshaking)
    /// The owner asked for plaintext (`startReading`).
    private var reading = false
    private var handshakeCompletion: ((String?) -> Void)?

    package var onRead: ((UnsafeRawBufferPointer) -> Void)?
    package var onEnd: ((StreamFailure?) -> Void)?
    package var onClose: (() -> Void)?

    /// Whether the handshake resumed a saved session.
    package var resumed: Bool { state.session == .established(resumed: true) }
    package var pendingWriteBytes: Int { tcp.pendingWriteBytes }
    /// The ciphertext is handed to the socket as it is made: drained socket, drained stream.
    package var onDrain: (() -> Void)? {
        get { tcp.onDrain }
        set { tcp.onDrain = newValue }
    }

    init(tcp: TCPStream, client: TLSClient, session: OpaquePointer, origin: String) {
        self.tcp = tcp
        self.client = client
        self.session = session
        self.origin = origin
        // Strong captures: the TCP stream holds this stream until its close callback, which
        // drops these closures.
        tcp.onRead = { bytes in self.received(bytes) }
        tcp.onEnd = { error in self.transportEnded(error) }
        tcp.onClose = { self.closed() }
    }

    /// Runs the handshake; `completion` gets nil once it is done, else OpenSSL's reason.
    /// The caller bounds it in time by closing the stream.
    func handshake(_ completion: @escaping (String?) -> Void) {
        assertOnLoop(tcp.loop)
        handshakeCompletion = completion
        tcp.startReading()
        advanceHandshake()
    }

    private func advanceHandshake() {
        let result = ctls_handshake(session)
        flush()
        switch Int(result) {
        case CTLS_OK:
            let resumed = ctls_resumed(session) != 0
            state.established(resumed: resumed)
            client.handshakeCompleted(resumed: resumed)
            if !resumed && ctls_capped(session) != 0 {
                // Offered 1.2 only to resume, and the server did not: forget the origin's
                // session so the next connection offers TLS 1.3 again.
                client.forgetSession(origin: origin)
            }
            client.saveTicket(from: session, origin: origin)
            completeHandshake(nil)
        case CTLS_WANT_MORE:
            break
        default:
            completeHandshake(String(cString: ctls_reason(session)))
        }
    }

    private func completeHandshake(_ failure: String?) {
        let completion = handshakeCompletion
        handshakeCompletion = nil
        if failure != nil && completion != nil { client.handshakeFailed() }
        completion?(failure)
    }

    package func startReading() {
        assertOnLoop(tcp.loop)
        guard !reading, !state.isClosing else { return }
        reading = true
        // Records that arrived with the end of the handshake are decrypted now.
        readPlaintext()
    }

    private func received(_ bytes: UnsafeRawBufferPointer) {
        guard !state.isClosing else { return }
        if ctls_feed(session, bytes.baseAddress, bytes.count) != 0 {
            return fail("out of memory")
        }
        if !state.isEstablished {
            advanceHandshake()
            guard state.isEstablished else { return }
        }
        if reading { readPlaintext() }
    }

    /// Decrypts everything buffered into the loop's read buffer (the ciphertext it held
    /// has already been copied into OpenSSL), one `onRead` per chunk.
    private func readPlaintext() {
        let buffer = tcp.loop.sharedReadBuffer
        while !state.isClosing {
            let count = ctls_read(session, buffer.baseAddress, buffer.count)
            if count > 0 {
                onRead?(UnsafeRawBufferPointer(start: buffer.baseAddress, count: count))
                continue
            }
            flush()
            client.saveTicket(from: session, origin: origin)
            switch count {
            case CTLS_WANT_MORE:
                return
            case CTLS_CLOSED:
                return end(nil)
            default:
                return fail(String(cString: ctls_reason(session)))
            }
        }
    }

    private func transportEnded(_ error: UVError?) {
        if !state.isEstablished {
            return completeHandshake(error.map { "connection failed during the TLS handshake: \($0)" }
                                     ?? "connection closed during the TLS handshake")
        }
        if let error { return end(.io(error)) }
        if ctls_peer_closed(session) != 0 { return end(nil) }
        end(.tls("connection closed without close_notify (truncated stream)"))
    }

    private func end(_ failure: StreamFailure?) {
        let callback = onEnd
        onEnd = nil
        callback?(failure)
    }

    private func fail(_ reason: String) {
        if !state.isEstablished { completeHandshake(reason) } else { end(.tls(reason)) }
        abort()
    }

    /// Like `TCPStream.write`, a failure never calls back inside `write`: it is reported
    /// on a later loop turn, and later writes are ignored meanwhile.
    package func write(_ bytes: UnsafeRawBufferPointer) {
        assertOnLoop(tcp.loop)
        guard state.acceptsWrites, bytes.count > 0 else { return }
        guard Int(ctls_write(session, bytes.baseAddress, bytes.count)) == CTLS_OK else {
            state.writeFailed()
            let reason = String(cString: ctls_reason(session))
            tcp.runSoon { self.fail(reason) }
            return
        }
        flush()
    }

    /// Moves OpenSSL's pending ciphertext to the socket.
    private func flush() {
        let output = client.output
        while true {
            let count = ctls_take_output(session, output.baseAddress, output.count)
            if count == 0 { return }
            tcp.write(UnsafeRawBufferPointer(start: output.baseAddress, count: count))
        }
    }

    package func closeAfterFlush() {
        assertOnLoop(tcp.loop)
        guard !state.isClosing else { return }
        sendCloseNotify()
        state.close()
        tcp.closeAfterFlush()
    }

    package func close() {
        assertOnLoop(tcp.loop)
        guard !state.isClosing else { return }
        sendCloseNotify()
        abort()
    }

    private func sendCloseNotify() {
        guard state.isEstablished, !tcp.isClosing else { return }
        ctls_shutdown(session)
        flush()
    }

    private func abort() {
        state.close()
        tcp.close()
    }

    private func closed() {
        ctls_session_free(session)
        let callback = onClose
        onRead = nil
        onEnd = nil
        onClose = nil
        handshakeCompletion = nil
        callback?()
    }
}

@available(*, unavailable)
extension TLSStream: Sendable {}
