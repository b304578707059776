/// Resolves a host and connects to it within one deadline covering both steps.
package enum TCPConnector {
    package enum Failure: Error, CustomStringConvertible {
        case resolve(host: String, UVError)
        case connect(host: String, port: Int, UVError)
        case timedOut(milliseconds: UInt64)

        package var description: String {
            switch self {
            case .resolve(let host, let error): "cannot resolve \(host): \(error)"
            case .connect(let host, let port, let error): "cannot connect to \(host):\(port): \(error)"
            case .timedOut(let ms): "no connection within \(ms) ms"
            }
        }
    }

    /// Calls `completion` exactly once, on the loop, with a connected stream (Nagle off)
    /// or the reason there is none. Without a `timeout` the kernel's connect timeout applies.
    package static func connect(loop: EventLoop, host: String, port: Int, timeout: UInt64?,
                               completion: @escaping (Result<TCPStream, Failure>) -> Void) {
        let attempt = Attempt(completion)
        if let timeout, let timer = try? Timer(loop: loop) {
            attempt.timer = timer
            timer.start(timeout: timeout) { attempt.finish(.failure(.timedOut(milliseconds: timeout))) }
        }
        DNSResolver.resolve(loop: loop, host: host, port: port) { result in
            guard !attempt.isFinished else { return }
            switch result {
            case .failure(let error):
                attempt.finish(.failure(.resolve(host: host, error)))
            case .success(let addresses):
                let stream: TCPStream
                do throws(UVError) { stream = try TCPStream(loop: loop) } catch {
                    return attempt.finish(.failure(.connect(host: host, port: port, error)))
                }
                attempt.stream = stream
                stream.connect(to: addresses[0]) { error in
                    if let error {
                        attempt.finish(.failure(.connect(host: host, port: port, error)))
                    } else {
                        stream.setNoDelay()
                        attempt.finish(.success(stream))
                    }
                }
            }
        }
    }

    private final class Attempt {
        var completion: ((Result<TCPStream, Failure>) -> Void)?
        var timer: Timer?
        var stream: TCPStream?

        init(_ completion: @escaping (Result<TCPStream, Failure>) -> Void) { self.completion = completion }

        var isFinished: Bool { completion == nil }

        func finish(_ result: Result<TCPStream, Failure>) {
            guard let completion else { return }
            self.completion = nil
            timer?.close()
            timer = nil
            // A stream that did not make it (timeout, error) is closed here; closing cancels
            // a connect still in progress, whose callback then finds the attempt finished.
            if case .failure = result { stream?.close() }
            stream = nil
            completion(result)
        }
    }
}
