import AVRProtocol

/// Picks each call's speech backend: the route's `sts_url` or `STS_URL` selects an STS over
/// WebSocket (`ws://`, `wss://`) or streaming HTTP (`http://`, `https://`); with neither, the
/// ASR → LLM → TTS pipeline when `ASR_URL`, `LLM_URL` and `TTS_URL` are set (a webhook's
/// `sts_url` still gives that call an STS); with none of these, the built-in echo answers.
/// Adding a backend touches its own folder, a case of `SpeechBackendKind` (how it is named
/// and timed) and this switch (docs/ARCHITECTURE.md, "Speech backends").
enum SpeechBackendFactory {
    static func make(route: CallRoute?, uuid: CallUUID, context: CallContext, log: Logger) -> Result<SpeechBackend, SpeechFailure> {
        guard let urlText = route?.stsURL ?? context.configuration.stsURLText else {
            if let urls = context.configuration.pipeline {
                return .success(PipelineBackend(loop: context.loop,
                                                settings: .init(urls: urls, configuration: context.configuration),
                                                uuid: uuid.description, log: log, tls: context.tls,
                                                metrics: context.metrics.server))
            }
            return .success(EchoBackend())
        }
        let urls: [EndpointURL]
        do throws(STSEndpointList.ParseError) { urls = try STSEndpointList.parse(urlText) } catch {
            if case .invalidURL(let reason) = error.reason { return .failure(.unusableURL(error.entry, reason)) }
            return .failure(.unusableURL(urlText, .missingScheme))
        }
        let configuration = context.configuration
        let timeout = UInt64(configuration.stsConnectTimeoutMilliseconds)
        guard urls.count > 1 else {
            return .success(client(urls[0], text: urlText, uuid: uuid, context: context, log: log, timeout: timeout))
        }
        log.info("Connecting to STS (\(urls.count) endpoints, failover in this order): "
            + urls.map(\.redacted).joined(separator: " "))
        let settings = STSFailoverMachine.Settings(endpoints: urls.count, connectTimeout: timeout,
                                                   attempts: configuration.stsFailoverAttempts,
                                                   budget: UInt64(configuration.stsFailoverBudgetMilliseconds))
        let backend = STSFailoverBackend(loop: context.loop, endpoints: urls, settings: settings, log: log) { url, timeout in
            client(url, text: nil, uuid: uuid, context: context, log: log, timeout: timeout)
        }
        if let webhooks = context.webhooks {
            backend.onFailover = { [weak webhooks] event in
                webhooks?.send(.callFailover(from: event.from, to: event.to, reason: event.reason,
                                             gapMilliseconds: event.gapMilliseconds), uuid: uuid)
            }
        }
        return .success(backend)
    }

    /// The client of one endpoint; `text` (the URL as configured) is logged when given.
    private static func client(_ url: EndpointURL, text: String?, uuid: CallUUID, context: CallContext, log: Logger,
                               timeout: UInt64) -> SpeechBackend {
        let configuration = context.configuration
        if url.scheme.isWebSocket {
            if let text { log.info("Connecting to STS WebSocket: \(text)") }
            return STSWebSocketClient(loop: context.loop, url: url, uuid: uuid.description, scratch: context.scratch,
                                      log: log, connectTimeout: timeout, tls: context.tls,
                                      liveness: .init(interval: UInt64(configuration.stsPingIntervalMilliseconds),
                                                      timeout: UInt64(configuration.stsPingTimeoutMilliseconds)))
        }
        if let text { log.info("Connecting to STS over HTTP: \(text)") }
        return STSHTTPStreamClient(loop: context.loop, url: url, uuid: uuid.description, log: log,
                                   connectTimeout: timeout, tls: context.tls,
                                   timeouts: .init(head: UInt64(configuration.stsHTTPHeadTimeoutMilliseconds),
                                                   stall: UInt64(configuration.stsHTTPStallTimeoutMilliseconds)))
    }
}
