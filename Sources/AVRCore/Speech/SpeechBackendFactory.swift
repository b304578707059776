import AVRProtocol

/// Picks each call's speech backend: the route's `sts_url` or `STS_URL` selects an STS over
/// WebSocket (`ws://`, `wss://`) or streaming HTTP (`http://`, `https://`); with neither, the
/// ASR → LLM → TTS pipeline when `ASR_URL`, `LLM_URL` and `TTS_URL` are set (a webhook's
/// `sts_url` still gives that call an STS); with none of these, the built-in echo answers.
/// Adding a backend touches its own folder and this switch.
enum SpeechBackendFactory {
    static func make(route: CallRoute?, uuid: CallUUID, context: CallContext, log: Logger) -> Result<SpeechBackend, SpeechFailure> {
        guard let urlText = route?.stsURL ?? context.configuration.stsURL?.description else {
            if let urls = context.configuration.pipeline {
                return .success(PipelineBackend(loop: context.loop,
                                                settings: .init(urls: urls, configuration: context.configuration),
                                                uuid: uuid.description, log: log, tls: context.tls,
                                                metrics: context.metrics.server))
            }
            return .success(EchoBackend())
        }
        let url: EndpointURL
        do throws(EndpointURLError) { url = try EndpointURL.parse(urlText) } catch {
            return .failure(.unusableURL(urlText, error))
        }
        let timeout = UInt64(context.configuration.stsConnectTimeoutMilliseconds)
        if url.scheme.isWebSocket {
            log.info("Connecting to STS WebSocket: \(urlText)")
            return .success(STSWebSocketClient(loop: context.loop, url: url, uuid: uuid.description, scratch: context.scratch,
                                               log: log, connectTimeout: timeout, tls: context.tls,
                                               liveness: .init(interval: UInt64(context.configuration.stsPingIntervalMilliseconds),
                                                               timeout: UInt64(context.configuration.stsPingTimeoutMilliseconds))))
        }
        log.info("Connecting to STS over HTTP: \(urlText)")
        return .success(STSHTTPStreamClient(loop: context.loop, url: url, uuid: uuid.description, log: log,
                                            connectTimeout: timeout, tls: context.tls))
    }
}
