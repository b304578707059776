import Testing
@testable import AVRProtocol

@Suite struct CallUUIDTests {
    private let seedBytes: [UInt8] = [0x93, 0x56, 0x52, 0xE3, 0x7C, 0x59, 0x4E, 0xDC,
                                      0xB1, 0x7F, 0x96, 0x46, 0xA9, 0xC2, 0xA2, 0x65]

    @Test(arguments: [
        "935652e3-7c59-4edc-b17f-9646a9c2a265",
        "935652E3-7C59-4EDC-B17F-9646A9C2A265",
        "935652e3-7C59-4edc-B17f-9646a9C2a265",
    ])
    func parsesAnyCase(text: String) throws {
        let uuid = try #require(CallUUID(string: text))
        #expect(uuid.high == 0x9356_52E3_7C59_4EDC)
        #expect(uuid.low == 0xB17F_9646_A9C2_A265)
        #expect(uuid.description == "935652e3-7c59-4edc-b17f-9646a9c2a265")
        #expect(uuid.bytes == seedBytes)
    }

    @Test(arguments: [
        "",
        "935652e3-7c59-4edc-b17f-9646a9c2a26",  // 35
        "935652e3-7c59-4edc-b17f-9646a9c2a2655",  // 37
        "{935652e3-7c59-4edc-b17f-9646a9c2a265}",
        "935652e37c594edcb17f9646a9c2a265",  // no dashes
        "935652e3-7c59-4edc-b17f-9646a9c2a26g",  // bad hex
        "935652e3-7c59-4edc-b17f_9646a9c2a265",  // wrong separator
        "935652e37-c59-4edc-b17f-9646a9c2a265",  // dash misplaced
        "935652e3-7c59-4edc-b17f-9646a9c2a2 5",
        "935652e3-7c59-4edc-b17f-9646a9c2a2é",  // 36 UTF-8 bytes, not hex
        "-35652e3-7c59-4edc-b17f-9646a9c2a265",
        "urn:uuid:935652e3-7c59-4edc-b17f-96",
    ])
    func rejectsMalformedText(text: String) {
        #expect(CallUUID(string: text) == nil)
    }

    @Test func fromRawBytes() throws {
        let uuid = try #require(CallUUID(bytes: seedBytes))
        #expect(uuid.description == "935652e3-7c59-4edc-b17f-9646a9c2a265")
        #expect(uuid == CallUUID(string: "935652E3-7C59-4EDC-B17F-9646A9C2A265"))
        #expect(CallUUID(bytes: seedBytes[0..<16])?.bytes == seedBytes)
        #expect(CallUUID(bytes: [UInt8](repeating: 0, count: 16))?.description == "00000000-0000-0000-0000-000000000000")
        #expect(CallUUID(bytes: [UInt8](repeating: 0xFF, count: 16))?.description == "ffffffff-ffff-ffff-ffff-ffffffffffff")
    }

    @Test func rawBytesOfTheWrongLengthAreRefused() {
        #expect(CallUUID(bytes: []) == nil)
        #expect(CallUUID(bytes: Array(seedBytes.dropLast())) == nil)
        #expect(CallUUID(bytes: seedBytes + [0]) == nil)
    }

    @Test func hashesAsAKey() {
        let a = CallUUID(string: "935652e3-7c59-4edc-b17f-9646a9c2a265")!
        let b = CallUUID(string: "935652E3-7C59-4EDC-B17F-9646A9C2A265")!
        let c = CallUUID(string: "935652e3-7c59-4edc-b17f-9646a9c2a266")!
        var calls: [CallUUID: Int] = [a: 1]
        calls[c] = 2
        #expect(calls[b] == 1)
        #expect(calls.count == 2)
    }

    @Test func appendDescriptionWritesInPlace() {
        var bytes = Array("uuid=".utf8)
        CallUUID(high: 0x0123_4567_89AB_CDEF, low: 0xFEDC_BA98_7654_3210).appendDescription(to: &bytes)
        #expect(String(decoding: bytes, as: UTF8.self) == "uuid=01234567-89ab-cdef-fedc-ba9876543210")
    }
}
