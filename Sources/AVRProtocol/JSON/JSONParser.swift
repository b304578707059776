extension JSONValue {
    /// Parses one JSON text (RFC 8259, strict): any value at the top, surrounded only by
    /// whitespace; UTF-8 validated; at most `JSONParser.maximumDepth` nested containers so a
    /// hostile body cannot exhaust the stack.
    package static func parse(_ bytes: some Collection<UInt8>) throws(JSONError) -> JSONValue {
        let result = bytes.withContiguousStorageIfAvailable { buffer in
            JSONParser.parse(UnsafeRawBufferPointer(buffer))
        }
        switch result ?? Array(bytes).withUnsafeBytes({ JSONParser.parse($0) }) {
        case .success(let value): return value
        case .failure(let error): throw error
        }
    }

    /// Parses one JSON text from raw memory (for example a request body still in its
    /// read buffer); see `parse(_:)` for the rules.
    package static func parse(_ buffer: UnsafeRawBufferPointer) throws(JSONError) -> JSONValue {
        try JSONParser.parse(buffer).get()
    }

    /// Parses the readable bytes of `buffer` (error offsets count from its reader index).
    package static func parse(_ buffer: ByteBuffer) throws(JSONError) -> JSONValue {
        try parse(buffer.storage[buffer.readerIndex...])
    }
}

/// A recursive-descent parser over a byte buffer. Strings without escapes or non-ASCII
/// bytes are copied once; the others go through one scratch array reused for the whole
/// parse.
struct JSONParser {
    /// Containers nested deeper than this are refused (a `[[[[...` body is an attack, not
    /// call metadata).
    static let maximumDepth = 64

    private let bytes: UnsafeRawBufferPointer
    private var index = 0
    private var depth = 0
    private var scratch: [UInt8] = []

    private init(_ bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
    }

    static func parse(_ bytes: UnsafeRawBufferPointer) -> Result<JSONValue, JSONError> {
        var parser = JSONParser(bytes)
        do throws(JSONError) {
            parser.skipWhitespace()
            let value = try parser.parseValue()
            parser.skipWhitespace()
            if parser.index != bytes.count { throw JSONError(.trailingData, at: parser.index) }
            return .success(value)
        } catch {
            return .failure(error)
        }
    }

    // MARK: - Structure

    private var atEnd: Bool { index >= bytes.count }

    private func peek() throws(JSONError) -> UInt8 {
        guard index < bytes.count else { throw JSONError(.unexpectedEndOfInput, at: index) }
        return bytes[index]
    }

    private mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\n"), UInt8(ascii: "\r"): index += 1
            default: return
            }
        }
    }

    private mutating func parseValue() throws(JSONError) -> JSONValue {
        switch try peek() {
        case UInt8(ascii: "{"): return try parseObject()
        case UInt8(ascii: "["): return try parseArray()
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try expectLiteral("true"); return .bool(true)
        case UInt8(ascii: "f"): try expectLiteral("false"); return .bool(false)
        case UInt8(ascii: "n"): try expectLiteral("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try parseNumber())
        default: throw JSONError(.expectedValue, at: index)
        }
    }

    private mutating func enterContainer() throws(JSONError) {
        depth += 1
        if depth > Self.maximumDepth { throw JSONError(.tooDeeplyNested, at: index) }
        index += 1  // the opening bracket
    }

    private mutating func parseObject() throws(JSONError) -> JSONValue {
        try enterContainer()
        var object = JSONObject()
        skipWhitespace()
        if try peek() == UInt8(ascii: "}") {
            index += 1
            depth -= 1
            return .object(object)
        }
        while true {
            skipWhitespace()
            guard try peek() == UInt8(ascii: "\"") else { throw JSONError(.expectedKey, at: index) }
            let key = try parseString()
            skipWhitespace()
            guard try peek() == UInt8(ascii: ":") else { throw JSONError(.expectedColon, at: index) }
            index += 1
            skipWhitespace()
            object.append(key: key, value: try parseValue())
            skipWhitespace()
            switch try peek() {
            case UInt8(ascii: ","): index += 1
            case UInt8(ascii: "}"):
                index += 1
                depth -= 1
                return .object(object)
            default: throw JSONError(.expectedCommaOrObjectEnd, at: index)
            }
        }
    }

    private mutating func parseArray() throws(JSONError) -> JSONValue {
        try enterContainer()
        var elements: [JSONValue] = []
        skipWhitespace()
        if try peek() == UInt8(ascii: "]") {
            index += 1
            depth -= 1
            return .array(elements)
        }
        while true {
            skipWhitespace()
            elements.append(try parseValue())
            skipWhitespace()
            switch try peek() {
            case UInt8(ascii: ","): index += 1
            case UInt8(ascii: "]"):
                index += 1
                depth -= 1
                return .array(elements)
            default: throw JSONError(.expectedCommaOrArrayEnd, at: index)
            }
        }
    }

    private mutating func expectLiteral(_ literal: StaticString) throws(JSONError) {
        let start = index
        let count = literal.utf8CodeUnitCount
        guard bytes.count - index >= count else {
            // A truncated but so far correct literal is an early end, anything else is wrong.
            for offset in 0..<(bytes.count - index) where bytes[index + offset] != literal.utf8Start[offset] {
                throw JSONError(.invalidLiteral, at: start)
            }
            throw JSONError(.unexpectedEndOfInput, at: bytes.count)
        }
        for offset in 0..<count where bytes[index + offset] != literal.utf8Start[offset] {
            throw JSONError(.invalidLiteral, at: start)
        }
        index += count
    }

    // MARK: - Numbers

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`, returned as written.
    private mutating func parseNumber() throws(JSONError) -> String {
        let start = index
        if bytes[index] == UInt8(ascii: "-") { index += 1 }
        guard !atEnd else { throw JSONError(.unexpectedEndOfInput, at: index) }
        if bytes[index] == UInt8(ascii: "0") {
            index += 1
            if !atEnd, isDigit(bytes[index]) { throw JSONError(.leadingZero, at: index - 1) }
        } else {
            try skipDigits()
        }
        if !atEnd, bytes[index] == UInt8(ascii: ".") {
            index += 1
            try skipDigits()
        }
        if !atEnd, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
            index += 1
            if !atEnd, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
            try skipDigits()
        }
        return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
    }

    /// One or more digits.
    private mutating func skipDigits() throws(JSONError) {
        guard !atEnd else { throw JSONError(.unexpectedEndOfInput, at: index) }
        guard isDigit(bytes[index]) else { throw JSONError(.invalidNumber, at: index) }
        while !atEnd, isDigit(bytes[index]) { index += 1 }
    }

    private func isDigit(_ byte: UInt8) -> Bool {
        byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")
    }

    // MARK: - Strings

    /// Parses a string starting at its opening quote, leaving `index` after the closing one.
    private mutating func parseString() throws(JSONError) -> String {
        index += 1  // the opening quote
        let start = index
        // Fast path: plain ASCII up to the closing quote is copied once.
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                index += 1
                return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<(index - 1)]), as: UTF8.self)
            }
            if byte == UInt8(ascii: "\\") || byte < 0x20 || byte >= 0x80 { break }
            index += 1
        }
        scratch.removeAll(keepingCapacity: true)
        scratch.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[start..<index]))
        while true {
            guard index < bytes.count else { throw JSONError(.unexpectedEndOfInput, at: index) }
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "\""):
                index += 1
                return String(decoding: scratch, as: UTF8.self)
            case UInt8(ascii: "\\"):
                try parseEscape()
            case 0..<0x20:
                throw JSONError(.controlCharacterInString, at: index)
            case 0x20..<0x80:
                scratch.append(byte)
                index += 1
            default:
                try copyUTF8Sequence()
            }
        }
    }

    private mutating func parseEscape() throws(JSONError) {
        let start = index
        index += 1  // the backslash
        guard index < bytes.count else { throw JSONError(.unexpectedEndOfInput, at: index) }
        let replacement: UInt8
        switch bytes[index] {
        case UInt8(ascii: "\""): replacement = UInt8(ascii: "\"")
        case UInt8(ascii: "\\"): replacement = UInt8(ascii: "\\")
        case UInt8(ascii: "/"): replacement = UInt8(ascii: "/")
        case UInt8(ascii: "b"): replacement = 0x08
        case UInt8(ascii: "f"): replacement = 0x0C
        case UInt8(ascii: "n"): replacement = 0x0A
        case UInt8(ascii: "r"): replacement = 0x0D
        case UInt8(ascii: "t"): replacement = 0x09
        case UInt8(ascii: "u"):
            index += 1
            let unit = try parseHex4()
            var scalarValue = UInt32(unit)
            if (0xDC00...0xDFFF).contains(unit) { throw JSONError(.loneSurrogate, at: start) }
            if (0xD800...0xDBFF).contains(unit) {
                // A high surrogate must be followed at once by an escaped low surrogate.
                guard bytes.count - index >= 2, bytes[index] == UInt8(ascii: "\\"),
                    bytes[index + 1] == UInt8(ascii: "u")
                else { throw JSONError(.loneSurrogate, at: start) }
                let lowStart = index
                index += 2
                let low = try parseHex4()
                guard (0xDC00...0xDFFF).contains(low) else { throw JSONError(.loneSurrogate, at: lowStart) }
                scalarValue = 0x10000 + ((UInt32(unit) - 0xD800) << 10) + (UInt32(low) - 0xDC00)
            }
            // Never nil: surrogates were handled above and the value is at most 0x10FFFF.
            let scalar = Unicode.Scalar(scalarValue)!
            for unit in UTF8.encode(scalar)! { scratch.append(unit) }
            return
        default:
            throw JSONError(.invalidEscape, at: start)
        }
        scratch.append(replacement)
        index += 1
    }

    private mutating func parseHex4() throws(JSONError) -> UInt16 {
        var value: UInt16 = 0
        for _ in 0..<4 {
            guard index < bytes.count else { throw JSONError(.unexpectedEndOfInput, at: index) }
            let byte = bytes[index]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw JSONError(.invalidUnicodeEscape, at: index)
            }
            value = value << 4 | UInt16(digit)
            index += 1
        }
        return value
    }

    /// Validates one multi-byte UTF-8 sequence (Unicode table 3-7: no overlong forms, no
    /// surrogates, nothing above U+10FFFF) and copies it to the scratch buffer.
    private mutating func copyUTF8Sequence() throws(JSONError) {
        let start = index
        let lead = bytes[index]
        let length: Int
        var secondRange: ClosedRange<UInt8> = 0x80...0xBF
        switch lead {
        case 0xC2...0xDF: length = 2
        case 0xE0: length = 3; secondRange = 0xA0...0xBF
        case 0xE1...0xEC, 0xEE...0xEF: length = 3
        case 0xED: length = 3; secondRange = 0x80...0x9F
        case 0xF0: length = 4; secondRange = 0x90...0xBF
        case 0xF1...0xF3: length = 4
        case 0xF4: length = 4; secondRange = 0x80...0x8F
        default: throw JSONError(.invalidUTF8, at: start)
        }
        guard bytes.count - start >= length else { throw JSONError(.invalidUTF8, at: start) }
        guard secondRange.contains(bytes[start + 1]) else { throw JSONError(.invalidUTF8, at: start) }
        for offset in 2..<length where !(0x80...0xBF).contains(bytes[start + offset]) {
            throw JSONError(.invalidUTF8, at: start)
        }
        scratch.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[start..<(start + length)]))
        index += length
    }
}
