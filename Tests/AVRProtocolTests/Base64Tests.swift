import Testing
@testable import AVRProtocol

@Suite struct Base64Tests {
    /// RFC 4648 §10.
    static let vectors: [(String, String)] = [
        ("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="), ("fooba", "Zm9vYmE="), ("foobar", "Zm9vYmFy"),
    ]

    @Test func encodesRFC4648Vectors() {
        for (plain, encoded) in Self.vectors {
            #expect(Base64.encodeToString(plain.utf8) == encoded)
            var output: [UInt8] = [0xAA]
            Array(plain.utf8).withUnsafeBytes { Base64.encode($0, appendingTo: &output) }
            #expect(output == [0xAA] + Array(encoded.utf8), "append keeps what was there")
        }
    }

    @Test func decodesRFC4648Vectors() throws {
        for (plain, encoded) in Self.vectors {
            #expect(try Base64.decode(encoded) == Array(plain.utf8))
            let length = try Array(encoded.utf8).withUnsafeBytes { try Base64.decodedLength(of: $0) }
            #expect(length == plain.utf8.count)
        }
    }

    @Test func encodesAllBytesAndBoundaries() {
        let all = (0...255).map { UInt8($0) }
        #expect(Base64.encodeToString(all.prefix(3)) == "AAEC")
        #expect(Base64.encodeToString([0xFB, 0xFF, 0xBF]) == "+/+/")
        #expect(Base64.encodeToString([0xFF]) == "/w==")
        #expect(Base64.encodeToString([0xFF, 0xFF]) == "//8=")
    }

    @Test func roundTripsRandomData() throws {
        var generator = SplitMix64(seed: 42)
        for count in Array(0...64) + [319, 320, 321, 1000, 4096] {
            let data = [UInt8].random(count: count, using: &generator)
            let encoded = Base64.encodeToString(data)
            #expect(encoded.utf8.count == Base64.encodedLength(of: count))
            #expect(try Base64.decode(encoded) == data)
        }
    }

    @Test func encodeIntoBufferWritesExactlyTheLength() {
        let input: [UInt8] = Array("foob".utf8)
        var output = [UInt8](repeating: 0xEE, count: 10)
        let written = input.withUnsafeBytes { source in
            output.withUnsafeMutableBytes { Base64.encode(source, into: $0) }
        }
        #expect(written == 8)
        #expect(output == Array("Zm9vYg==".utf8) + [0xEE, 0xEE])
    }

    @Test func rejectsMalformedInput() {
        let cases: [(String, Base64Error)] = [
            ("Zg=", .invalidLength(3)),
            ("Zm9vY", .invalidLength(5)),
            ("Zm9v!A==", .invalidCharacter(offset: 4)),
            ("Zm 9v", .invalidLength(5)),
            ("Zm 9", .invalidCharacter(offset: 2)),
            ("Zg==Zg==", .invalidCharacter(offset: 2)),
            ("=AAA", .invalidCharacter(offset: 0)),
            ("Z===", .invalidCharacter(offset: 1)),
            ("AA=A", .invalidCharacter(offset: 2)),
            ("Zh==", .invalidPadding(offset: 1)),
            ("Zm9=", .invalidPadding(offset: 2)),
            ("Zm9v\u{7F}AAA", .invalidCharacter(offset: 4)),
            ("Zm9v\u{E9}AA", .invalidCharacter(offset: 4)),  // a non-ASCII byte
            ("Zm9vZm9vZm9-", .invalidCharacter(offset: 11)),
            ("Zm9vZm9vZm9_", .invalidCharacter(offset: 11)),
        ]
        for (input, expected) in cases {
            #expect(throws: expected, "\(input)") { try Base64.decode(input) }
        }
    }

    @Test func failedAppendLeavesOutputUnchanged() {
        var output: [UInt8] = [1, 2, 3]
        #expect(throws: Base64Error.invalidCharacter(offset: 6)) {
            try Array("Zm9vYm!y".utf8).withUnsafeBytes { try Base64.decode($0, appendingTo: &output) }
        }
        #expect(output == [1, 2, 3])
    }
}
