/// Why a byte sequence is not JSON, and where: the HTTP service puts `description` in its
/// 400 answer, so a dialplan author sees e.g. `invalid JSON at byte 17: expected ':'`.
package struct JSONError: Error, Sendable, Equatable, CustomStringConvertible {
    package enum Reason: Sendable, Equatable {
        case unexpectedEndOfInput
        /// A byte that cannot start a value here.
        case expectedValue
        case expectedColon
        /// Inside an object: neither `,` nor `}` followed a member.
        case expectedCommaOrObjectEnd
        /// Inside an array: neither `,` nor `]` followed an element.
        case expectedCommaOrArrayEnd
        /// An object member must start with a string key.
        case expectedKey
        case invalidLiteral
        case invalidNumber
        case leadingZero
        case invalidEscape
        case invalidUnicodeEscape
        case loneSurrogate
        case controlCharacterInString
        case invalidUTF8
        case tooDeeplyNested
        case trailingData
    }

    package let reason: Reason
    /// Zero-based offset of the offending byte in the input.
    package let offset: Int

    package init(_ reason: Reason, at offset: Int) {
        self.reason = reason
        self.offset = offset
    }

    /// A short phrase for the reason, without the position.
    package var message: String {
        switch reason {
        case .unexpectedEndOfInput: "unexpected end of input"
        case .expectedValue: "expected a value"
        case .expectedColon: "expected ':'"
        case .expectedCommaOrObjectEnd: "expected ',' or '}'"
        case .expectedCommaOrArrayEnd: "expected ',' or ']'"
        case .expectedKey: "expected a string key"
        case .invalidLiteral: "invalid literal (expected true, false or null)"
        case .invalidNumber: "invalid number"
        case .leadingZero: "leading zeros are not allowed in numbers"
        case .invalidEscape: "invalid escape sequence"
        case .invalidUnicodeEscape: "invalid \\u escape (expected 4 hex digits)"
        case .loneSurrogate: "unpaired UTF-16 surrogate in \\u escape"
        case .controlCharacterInString: "unescaped control character in string"
        case .invalidUTF8: "invalid UTF-8"
        case .tooDeeplyNested: "nesting deeper than \(JSONParser.maximumDepth) levels"
        case .trailingData: "unexpected data after the JSON value"
        }
    }

    package var description: String { "invalid JSON at byte \(offset): \(message)" }
}
