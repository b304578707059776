/// A setting that cannot be used. The server prints `description` — one line naming the
/// variable and the value — and exits non-zero, before opening any port.
package struct ConfigurationError: Error, Sendable, Equatable, CustomStringConvertible {
    package enum Problem: Sendable, Equatable {
        /// Not 1-65535 in decimal digits.
        case notAPort
        /// Not decimal digits, or outside `range`; `unit` names what the number counts.
        case notAnIntegerInRange(ClosedRange<Int>, unit: String)
        /// Not a decimal number between 0.0 and 1.0.
        case notALevel
        case invalidURL(EndpointURLError)
        /// A valid URL with a scheme this variable does not take (`expected` lists those it does).
        case unsupportedScheme(expected: String)
        case fileNotFound
        /// The file exists but this process may not read it (`EACCES`).
        case fileUnreadable
        /// A directory where a file is expected.
        case isADirectory
        /// Not a numeric IPv4 or IPv6 address (`BIND_ADDRESS`).
        case notAnIPAddress
        /// The port of another listener (named).
        case samePortAs(String)
        case unknownLogLevel
        case unknownLogFormat
        case unknownMediaPacing
        /// A header value with a control character; the description does not repeat the
        /// value, which is a secret.
        case controlCharacterInHeaderValue
        /// `REDIS_URL` unusable; the description gives the reason, never the value (a password).
        case invalidRedisURL(String)
        /// Empty, longer than 128 bytes, or with spaces or control characters.
        case badKeyPrefix
        /// Not `true` or `false`.
        case notABoolean
        /// `STS_URL` together with pipeline URLs (`set` names them).
        case conflictsWithPipeline([String])
        /// This pipeline URL is unset while the others (`set`) are.
        case missingForPipeline([String])
        /// `VAD_POSITIVE_SPEECH_THRESHOLD` of 0 would make every frame speech.
        case zeroSpeechThreshold
        /// `VAD_NEGATIVE_SPEECH_THRESHOLD` above the positive one (given, or its default).
        case negativeAbovePositiveThreshold(positive: String)
        /// `VAD_MODEL` other than the built-in detector.
        case unknownVADModel
        /// `STS_URL` lists no endpoint, or too many (the reason says which).
        case badEndpointList(String)
    }

    /// The environment variable's name, e.g. `PORT`.
    package let variable: String
    /// The value as it was set.
    package let value: String
    package let problem: Problem

    package init(variable: String, value: String, problem: Problem) {
        self.variable = variable
        self.value = value
        self.problem = problem
    }

    package var description: String {
        // Escaped so that a stray newline in a value cannot split the one-line message.
        let quoted = "\"" + JSONValue.escapedString(value) + "\""
        switch problem {
        case .notAPort:
            return "\(variable): \(quoted) is not a port (1-65535)"
        case .notAnIntegerInRange(let range, let unit):
            return "\(variable): \(quoted) is not a whole number of \(unit) in \(range.lowerBound)-\(range.upperBound)"
        case .notALevel:
            return "\(variable): \(quoted) is not a level between 0.0 and 1.0"
        case .invalidURL(let reason):
            return "\(variable): \(quoted) is not a valid URL: \(reason)"
        case .unsupportedScheme(let expected):
            return "\(variable): \(quoted) has an unsupported scheme (expected \(expected))"
        case .fileNotFound:
            return "\(variable): \(quoted) does not exist"
        case .fileUnreadable:
            return "\(variable): \(quoted) exists but cannot be read (permission denied)"
        case .isADirectory:
            return "\(variable): \(quoted) is a directory, not a file"
        case .notAnIPAddress:
            return "\(variable): \(quoted) is not a numeric IPv4 or IPv6 address (e.g. 0.0.0.0, 127.0.0.1, ::, ::1)"
        case .samePortAs(let other):
            return "\(variable): \(quoted) is also \(other): each listener needs a port of its own"
        case .unknownLogLevel:
            return "\(variable): \(quoted) is not one of debug, info, warn, error"
        case .unknownLogFormat:
            return "\(variable): \(quoted) is not one of text, json"
        case .unknownMediaPacing:
            return "\(variable): \(quoted) is not one of core, asterisk"
        case .controlCharacterInHeaderValue:
            return "\(variable): the value contains a control character (not allowed in an HTTP header)"
        case .invalidRedisURL(let reason):
            return "\(variable): not a usable redis://[:password@]host[:port][/db] URL: \(reason)"
        case .badKeyPrefix:
            return "\(variable): \(quoted) must be 1-128 bytes without spaces or control characters"
        case .notABoolean:
            return "\(variable): \(quoted) is not one of true, false"
        case .conflictsWithPipeline(let set):
            return "\(variable): \(quoted) cannot be combined with \(set.joined(separator: ", ")): "
                + "set STS_URL alone (speech-to-speech) or ASR_URL, LLM_URL and TTS_URL without it (pipeline)"
        case .missingForPipeline(let set):
            return "\(variable): unset, but \(set.joined(separator: " and ")) \(set.count == 1 ? "is" : "are") set: "
                + "the pipeline needs ASR_URL, LLM_URL and TTS_URL"
        case .zeroSpeechThreshold:
            return "\(variable): \(quoted) must be above 0 (at 0 every frame is speech)"
        case .negativeAbovePositiveThreshold(let positive):
            return "\(variable): \(quoted) must not be above VAD_POSITIVE_SPEECH_THRESHOLD (\(JSONValue.escapedString(positive)))"
        case .badEndpointList(let reason):
            return "\(variable): \(reason)"
        case .unknownVADModel:
            return "\(variable): \(quoted) is not a built-in detector (only sohn, the statistical VAD; Silero's ONNX models are not shipped, see docs/VAD.md)"
        }
    }
}
