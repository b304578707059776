import AVRProtocol

/// `--check-config`: after the variables parse, open what start-up will open, so that a
/// configuration that passes here does not fail on start.
///
/// - the TLS trust store (the system's plus `TLS_CA_FILE`, which must hold a certificate);
/// - `AMBIENT_NOISE_FILE`, read whole;
/// - each listener's port on `BIND_ADDRESS` (the metrics port on `METRICS_BIND_ADDRESS`): bound and closed at once (so a port another
///   process holds, or an address this host does not have, is reported now, with the same
///   line start-up would write).
package enum StartupCheck {
    /// The first problem as one line, nil when everything opened.
    package static func problem(_ configuration: Configuration) -> String? {
        do throws(TLSClient.SetupError) {
            _ = try TLSClient(caFile: configuration.tlsCAFile)
        } catch {
            return StartError(message: "\(error)", cause: UVError(UV_EINVAL_VALUE)).description
        }
        if let path = configuration.ambientNoiseFile {
            guard let bytes = FileReader.read(path: path), bytes.count >= 2 else {
                return "AMBIENT_NOISE_FILE: cannot read \(path) (or it holds no audio)"
            }
        }
        return bindProblem(configuration)
    }

    /// Binds every configured port on `BIND_ADDRESS`, then closes them all.
    static func bindProblem(_ configuration: Configuration) -> String? {
        let loop: EventLoop
        do { loop = try EventLoop() } catch { return "Cannot start: \(error)" }
        let ports: [(String, Int?)] = [("PORT", configuration.audioSocketPort), ("HTTP_PORT", configuration.httpPort),
                                       ("METRICS_PORT", configuration.metricsPort)]
        var listeners: [TCPListener] = []
        var problem: String?
        for case let (variable, port?) in ports {
            let address = variable == "METRICS_PORT" ? configuration.metricsBindAddress ?? configuration.bindAddress
                : configuration.bindAddress
            do {
                listeners.append(try TCPListener(loop: loop, host: address, port: port))
            } catch {
                let listener = StartError.Listener(variable: variable, port: port, address: address)
                problem = StartError(listener: listener, cause: error).description
                break
            }
        }
        for listener in listeners { listener.close() }
        loop.run()
        try? loop.close()
        return problem
    }
}
