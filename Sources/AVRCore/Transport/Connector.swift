import AVRProtocol

/// Opens a client connection: resolve, TCP connect and (with a `TLSClient`) the TLS
/// handshake, all within one deadline. The only place a client chooses its transport.
package enum Connector {
    package enum Failure: Error, CustomStringConvertible {
        case tcp(TCPConnector.Failure)
        /// The TLS handshake failed: OpenSSL's reason.
        case tls(String)
        case timedOut(milliseconds: UInt64)

        package var description: String {
            switch self {
            case .tcp(let failure): "\(failure)"
            case .tls(let reason): "TLS handshake failed: \(reason)"
            case .timedOut(let ms): "no connection within \(ms) ms"
            }
        }
    }

    /// Calls `completion` exactly once, on the loop, with a connected (and, with `tls`,
    /// verified) stream, or the reason there is none.
    package static func connect(loop: EventLoop, host: String, port: Int, tls: TLSClient?, timeout: UInt64?,
                               completion: @escaping (Result<ClientStream, Failure>) -> Void) {
        let started = loop.milliseconds
        TCPConnector.connect(loop: loop, host: host, port: port, timeout: timeout) { result in
            let tcp: TCPStream
            switch result {
            case .failure(.timedOut(let ms)): return completion(.failure(.timedOut(milliseconds: ms)))
            case .failure(let failure): return completion(.failure(.tcp(failure)))
            case .success(let stream): tcp = stream
            }
            guard let tls else { return completion(.success(PlainStream(tcp))) }
            let origin = "\(host):\(port)"
            let session: OpaquePointer
            switch tls.makeSession(host: host, origin: origin) {
            case .failure(let failure):
                tcp.close()
                return completion(.failure(.tls("\(failure)")))
            case .success(let made): session = made
            }
            let stream = TLSStream(tcp: tcp, client: tls, session: session, origin: origin)
            let handshake = Handshake(completion)
            if let timeout {
                let elapsed = loop.milliseconds &- started
                let remaining = timeout > elapsed ? timeout - elapsed : 1
                if let timer = try? Timer(loop: loop) {
                    handshake.timer = timer
                    timer.start(timeout: remaining) {
                        stream.close()
                        handshake.finish(.failure(.timedOut(milliseconds: timeout)))
                    }
                }
            }
            stream.handshake { failure in
                if let failure {
                    stream.close()
                    handshake.finish(.failure(.tls(failure)))
                } else {
                    handshake.finish(.success(stream))
                }
            }
        }
    }

    private final class Handshake {
        var completion: ((Result<ClientStream, Failure>) -> Void)?
        var timer: Timer?

        init(_ completion: @escaping (Result<ClientStream, Failure>) -> Void) { self.completion = completion }

        func finish(_ result: Result<ClientStream, Failure>) {
            guard let completion else { return }
            self.completion = nil
            timer?.close()
            timer = nil
            completion(result)
        }
    }
}
