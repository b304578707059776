import Testing
@testable import AVRProtocol

@Suite struct SHA256Tests {
    private func hex(_ text: String) -> String {
        HMACSHA256.hex(SHA256.hash(text.utf8))
    }

    private func bytes(_ byte: UInt8, _ count: Int) -> [UInt8] {
        [UInt8](repeating: byte, count: count)
    }

    /// FIPS 180 examples.
    @Test func fipsVectors() {
        #expect(hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")
            == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        #expect(hex(String(repeating: "a", count: 1_000_000)) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    @Test func paddingBoundaries() {
        // 55, 56 and 64 bytes cross the one-block / two-block padding boundary.
        #expect(hex(String(repeating: "a", count: 55)) == "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318")
        #expect(hex(String(repeating: "a", count: 56)) == "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a")
        #expect(hex(String(repeating: "a", count: 64)) == "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb")
    }

    @Test func updatesInPiecesEqualOneUpdate() {
        let message = Array("The quick brown fox jumps over the lazy dog, again and again and again.".utf8)
        var hasher = SHA256()
        hasher.update(message[0..<3])
        hasher.update(message[3..<64])
        hasher.update(message[64...])
        #expect(hasher.finalize() == SHA256.hash(message))
    }

    /// RFC 4231, test cases 1–7 (HMAC-SHA-256).
    @Test(arguments: [
        ([UInt8](repeating: 0x0B, count: 20), Array("Hi There".utf8),
         "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
        (Array("Jefe".utf8), Array("what do ya want for nothing?".utf8),
         "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
        ([UInt8](repeating: 0xAA, count: 20), [UInt8](repeating: 0xDD, count: 50),
         "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"),
        (Array(1...25), [UInt8](repeating: 0xCD, count: 50),
         "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"),
        // Case 5 is truncated to 128 bits in the RFC.
        ([UInt8](repeating: 0x0C, count: 20), Array("Test With Truncation".utf8),
         "a3b6167473100ee06e0c796c2955552b"),
        ([UInt8](repeating: 0xAA, count: 131), Array("Test Using Larger Than Block-Size Key - Hash Key First".utf8),
         "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
        ([UInt8](repeating: 0xAA, count: 131),
         Array(("This is a test using a larger than block-size key and a larger than block-size data. "
             + "The key needs to be hashed before being used by the HMAC algorithm.").utf8),
         "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"),
    ] as [([UInt8], [UInt8], String)])
    func rfc4231(key: [UInt8], data: [UInt8], expected: String) {
        let code = HMACSHA256.hex(HMACSHA256(key: key).authenticationCode(of: data))
        #expect(code.hasPrefix(expected))
        #expect(code.count == 64)
    }

    @Test func partsAreConcatenated() {
        let mac = HMACSHA256(key: Array("Jefe".utf8))
        #expect(mac.authenticationCode(of: Array("what do ya ".utf8), [], Array("want for nothing?".utf8))
            == mac.authenticationCode(of: Array("what do ya want for nothing?".utf8)))
    }

    /// A key of exactly one block is used as it is; one byte more and it is hashed first
    /// (RFC 2104). Expected values from Python's `hmac`.
    @Test func keyLengthAroundTheBlockSize() {
        #expect(HMACSHA256.hex(HMACSHA256(key: bytes(0x61, 64)).authenticationCode(of: Array("x".utf8)))
            == "b65ca3a3235f948bc0e6bd747532c54a983b54ddad1a4d1bd8b958e065b1cab4")
        #expect(HMACSHA256.hex(HMACSHA256(key: bytes(0x61, 65)).authenticationCode(of: Array("x".utf8)))
            == "5c8ad20f6d25c86ccfc9774f1c0ca49d3675f3a112d9905cce286e2636681b75")
    }
}
