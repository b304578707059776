import Testing
@testable import AVRProtocol

@Suite struct FrameAlignerTests {
    /// Every piece handed on but the flushed one is whole frames, and together they are the
    /// input, however it was cut.
    @Test func wholeFramesWhateverTheCuts() {
        var random = TestRandom(seed: 9)
        let input = (0..<(320 * 7 + 161)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
        for pieceSize in [1, 2, 161, 319, 320, 321, 333, 640, 5000] {
            var aligner = FrameAligner()
            var out: [UInt8] = []
            var offset = 0
            while offset < input.count {
                let end = min(offset + pieceSize, input.count)
                input[offset..<end].withUnsafeBytes { piece in
                    aligner.append(piece) { frames in
                        #expect(frames.count % 320 == 0 && !frames.isEmpty, "piece size \(pieceSize)")
                        out += frames
                    }
                }
                offset = end
            }
            #expect(aligner.heldBytes == 161)
            aligner.flush { out += $0 }
            #expect(out == input, "piece size \(pieceSize)")
        }
    }

    @Test func resetForgetsThePartialFrame() {
        var aligner = FrameAligner()
        var emitted = 0
        [UInt8](repeating: 1, count: 100).withUnsafeBytes { aligner.append($0) { emitted += $0.count } }
        aligner.reset()
        [UInt8](repeating: 2, count: 320).withUnsafeBytes { aligner.append($0) { emitted += $0.count } }
        #expect(emitted == 320)
        #expect(aligner.heldBytes == 0)
    }
}
