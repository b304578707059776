import Testing
@testable import AVRProtocol

@Suite struct ByteBufferTests {
    @Test func appendConsumeAndCompact() {
        var buffer = ByteBuffer()
        buffer.append(contentsOf: [1, 2, 3, 4])
        #expect(buffer.readableBytes == 4)
        buffer.moveReaderIndex(forwardBy: 3)
        #expect(buffer.byte(at: 0) == 4)
        buffer.append(contentsOf: [5, 6])
        #expect(buffer.readableBytes == 3)
        #expect(buffer.withReadableBytes { Array($0) } == [4, 5, 6])
        buffer.moveReaderIndex(forwardBy: 3)
        #expect(buffer.isEmpty)
        #expect(buffer.readerIndex == 0)
    }
}
