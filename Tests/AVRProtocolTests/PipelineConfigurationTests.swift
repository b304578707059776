import Testing
@testable import AVRProtocol

private func parse(_ environment: [String: String]) throws(ConfigurationError) -> Configuration {
    try Configuration.parse(environment: environment, fileExists: { _ in true })
}

private func message(_ environment: [String: String]) -> String? {
    do {
        _ = try parse(environment)
        return nil
    } catch {
        return error.description
    }
}

private let pipelineURLs = [
    "ASR_URL": "http://127.0.0.1:6010/speech-to-text-stream",
    "LLM_URL": "https://llm.example:6002/prompt-stream",
    "TTS_URL": "http://127.0.0.1:6003/text-to-speech-stream",
]

@Suite struct PipelineConfigurationTests {
    @Test func defaults() throws {
        let configuration = try parse([:])
        #expect(configuration.pipeline == nil)
        #expect(configuration.systemMessage == nil)
        #expect(configuration.interruptListening == false)
        #expect(configuration.pipelineRequestTimeoutMilliseconds == 10_000)
        #expect(configuration.asrDebounceMilliseconds == 300)
        #expect(configuration.echoCancellation && configuration.echoCancelledASR)
    }

    @Test func echoCancellationSwitches() throws {
        let configuration = try parse(["ECHO_CANCELLATION": "False", "ECHO_CANCELLED_ASR": "false"])
        #expect(!configuration.echoCancellation && !configuration.echoCancelledASR)
        #expect(message(["ECHO_CANCELLATION": "off"]) == "ECHO_CANCELLATION: \"off\" is not one of true, false")
        #expect(message(["ECHO_CANCELLED_ASR": "1"]) == "ECHO_CANCELLED_ASR: \"1\" is not one of true, false")
    }

    @Test func allThreeURLsSelectThePipeline() throws {
        var environment = pipelineURLs
        environment["SYSTEM_MESSAGE"] = "Hello, how can I help?"
        environment["INTERRUPT_LISTENING"] = "TRUE"
        environment["PIPELINE_REQUEST_TIMEOUT"] = "2500"
        environment["ASR_DEBOUNCE_MS"] = "0"
        let configuration = try parse(environment)
        #expect(configuration.stsURL == nil)
        #expect(configuration.pipeline?.asr.requestTarget == "/speech-to-text-stream")
        #expect(configuration.pipeline?.llm.scheme.usesTLS == true)
        #expect(configuration.pipeline?.llm.port == 6002)
        #expect(configuration.pipeline?.tts.port == 6003)
        #expect(configuration.systemMessage == "Hello, how can I help?")
        #expect(configuration.interruptListening)
        #expect(configuration.pipelineRequestTimeoutMilliseconds == 2500)
        #expect(configuration.asrDebounceMilliseconds == 0)
    }

    @Test func stsAloneIsUnchanged() throws {
        let configuration = try parse(["STS_URL": "ws://127.0.0.1:6030"])
        #expect(configuration.stsURL != nil)
        #expect(configuration.pipeline == nil)
    }

    @Test func emptyPipelineValuesMeanUnset() throws {
        let configuration = try parse(["STS_URL": "ws://127.0.0.1:6030", "ASR_URL": "", "LLM_URL": "", "TTS_URL": "",
                                       "SYSTEM_MESSAGE": "", "INTERRUPT_LISTENING": ""])
        #expect(configuration.pipeline == nil)
        #expect(configuration.systemMessage == nil)
    }

    @Test func stsWithAnyPipelineURLIsAnError() {
        #expect(message(["STS_URL": "ws://sts:6030", "ASR_URL": "http://asr:6010"])
            == "STS_URL: \"ws://sts:6030\" cannot be combined with ASR_URL: set STS_URL alone (speech-to-speech) "
            + "or ASR_URL, LLM_URL and TTS_URL without it (pipeline)")
        var all = pipelineURLs
        all["STS_URL"] = "http://sts:6030"
        #expect(message(all)?.hasPrefix("STS_URL: \"http://sts:6030\" cannot be combined with ASR_URL, LLM_URL, TTS_URL") == true)
    }

    @Test func anIncompletePipelineIsAnError() {
        #expect(message(["ASR_URL": "http://asr:6010", "LLM_URL": "http://llm:6002"])
            == "TTS_URL: unset, but ASR_URL and LLM_URL are set: the pipeline needs ASR_URL, LLM_URL and TTS_URL")
        #expect(message(["TTS_URL": "http://tts:6003"])
            == "ASR_URL: unset, but TTS_URL is set: the pipeline needs ASR_URL, LLM_URL and TTS_URL")
    }

    @Test func badValues() {
        var environment = pipelineURLs
        environment["LLM_URL"] = "ws://llm:6002"
        #expect(message(environment) == "LLM_URL: \"ws://llm:6002\" has an unsupported scheme (expected http:// or https://)")
        environment = pipelineURLs
        environment["TTS_URL"] = "ftp://tts"
        #expect(message(environment)?.hasPrefix("TTS_URL: \"ftp://tts\" is not a valid URL") == true)
        #expect(message(["INTERRUPT_LISTENING": "yes"]) == "INTERRUPT_LISTENING: \"yes\" is not one of true, false")
        #expect(message(["PIPELINE_REQUEST_TIMEOUT": "0"])
            == "PIPELINE_REQUEST_TIMEOUT: \"0\" is not a whole number of milliseconds in 1-600000")
        #expect(message(["ASR_DEBOUNCE_MS": "-5"])
            == "ASR_DEBOUNCE_MS: \"-5\" is not a whole number of milliseconds in 0-10000")
    }

    @Test func helpListsThePipelineVariables() {
        let help = ConfigurationVariables.helpText(program: "avr-core")
        for name in ["ASR_URL", "LLM_URL", "TTS_URL", "SYSTEM_MESSAGE", "INTERRUPT_LISTENING",
                     "PIPELINE_REQUEST_TIMEOUT", "ASR_DEBOUNCE_MS", "ECHO_CANCELLATION", "ECHO_CANCELLED_ASR"] {
            #expect(help.contains("  \(name) "))
        }
    }
}
