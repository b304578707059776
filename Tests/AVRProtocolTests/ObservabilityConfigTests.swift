import Testing
@testable import AVRProtocol

@Suite struct ArrivalJitterTests {
    @Test func firstFrameHasNoGapThenDeviationFromThePreviousFramesDuration() {
        var jitter = ArrivalJitter()
        let frame: UInt64 = 20_000_000
        #expect(jitter.observe(at: 1_000, duration: frame) == nil)
        #expect(jitter.observe(at: 1_000 + frame, duration: frame) == 0)
        #expect(jitter.observe(at: 1_000 + 2 * frame + 3_000_000, duration: frame) == 3_000_000)  // 3 ms late
        #expect(jitter.observe(at: 1_000 + 3 * frame + 1_000_000, duration: frame) == 2_000_000)  // 2 ms early
        // Two frames in one read: the second one's gap is 0, a whole frame of jitter.
        #expect(jitter.observe(at: 1_000 + 3 * frame + 1_000_000, duration: frame / 2) == frame)
        // A 10 ms frame is expected 10 ms after.
        #expect(jitter.observe(at: 1_000 + 3 * frame + 1_000_000 + frame / 2, duration: frame) == 0)
    }

    @Test func durationsOfEachEncoding() {
        #expect(ArrivalJitter.linearDuration(bytes: 320, sampleRate: 8000) == 20_000_000)
        #expect(ArrivalJitter.linearDuration(bytes: 640, sampleRate: 16000) == 20_000_000)
        #expect(ArrivalJitter.linearDuration(bytes: 1920, sampleRate: 48000) == 20_000_000)
        #expect(ArrivalJitter.g711Duration(bytes: 160) == 20_000_000)
        #expect(ArrivalJitter.g711Duration(bytes: 80) == 10_000_000)
    }
}

@Suite struct CommandLineActionTests {
    @Test func knownOptions() {
        #expect(CommandLineAction.parse([]) == .run)
        #expect(CommandLineAction.parse(["--help"]) == .help)
        #expect(CommandLineAction.parse(["-h"]) == .help)
        #expect(CommandLineAction.parse(["--version"]) == .version)
        #expect(CommandLineAction.parse(["--check-config"]) == .checkConfig)
    }

    @Test func anythingElseIsAnError() {
        for arguments in [["--verbose"], ["run"], ["--help", "x"], ["--check-config", "--help"], [""], ["--HELP"]] {
            guard case .invalid(let message) = CommandLineAction.parse(arguments) else {
                Issue.record("\(arguments) accepted")
                continue
            }
            #expect(message.contains("try --help"))
        }
    }
}

@Suite struct ObservabilityConfigurationTests {
    @Test func logFormatAndMetricsPort() throws {
        let defaults = try Configuration.parse(environment: [:]) { _ in true }
        #expect(defaults.logFormat == .text && defaults.metricsPort == nil)
        let set = try Configuration.parse(environment: ["LOG_FORMAT": "JSON", "METRICS_PORT": "9464"]) { _ in true }
        #expect(set.logFormat == .json && set.metricsPort == 9464)
        #expect(throws: ConfigurationError(variable: "LOG_FORMAT", value: "xml", problem: .unknownLogFormat)) {
            try Configuration.parse(environment: ["LOG_FORMAT": "xml"]) { _ in true }
        }
        #expect(throws: ConfigurationError(variable: "METRICS_PORT", value: "0", problem: .notAPort)) {
            try Configuration.parse(environment: ["METRICS_PORT": "0"]) { _ in true }
        }
    }
}
