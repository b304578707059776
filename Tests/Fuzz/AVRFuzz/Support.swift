// Helpers shared by the targets: invariant checks and arbitrary chunking of a byte stream.

/// Fails the run (libFuzzer saves the input as a crash artifact) when an invariant breaks.
@inline(__always)
func require(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String,
             file: StaticString = #fileID, line: UInt = #line) {
    if !condition() { fatalError("invariant broken: \(message())", file: file, line: line) }
}

/// Splits a fuzz input into a stream and the chunk boundaries it is delivered with, so the
/// "bytes split anywhere" paths of incremental decoders run.
///
/// Layout: byte 0 is the split control: its low 3 bits give `k` (0–7) explicit chunk
/// lengths that follow it (one byte each, 0 meaning 256); bit 7 set delivers whatever comes
/// after those chunks one byte at a time, clear delivers it as one chunk. Bits 3–6 are left
/// to the target (`flags`). The stream is everything after the header.
struct SplitInput {
    let stream: UnsafeRawBufferPointer
    let chunks: [Range<Int>]
    let flags: UInt8

    init(_ data: UnsafeRawBufferPointer) {
        guard let control = data.first else {
            stream = data
            chunks = []
            flags = 0
            return
        }
        let explicit = min(Int(control & 0x07), data.count - 1)
        let lengths = data[1..<(1 + explicit)].map { $0 == 0 ? 256 : Int($0) }
        stream = UnsafeRawBufferPointer(rebasing: data[(1 + explicit)...])
        flags = (control >> 3) & 0x0F
        var ranges: [Range<Int>] = []
        var offset = 0
        for length in lengths where offset < stream.count {
            let end = min(offset + length, stream.count)
            ranges.append(offset..<end)
            offset = end
        }
        if offset < stream.count {
            if control & 0x80 != 0 {
                ranges += (offset..<stream.count).map { $0..<($0 + 1) }
            } else {
                ranges.append(offset..<stream.count)
            }
        }
        chunks = ranges
    }

    func chunk(_ range: Range<Int>) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: stream[range])
    }

    /// The whole stream as one chunk (for comparing against the split delivery).
    var whole: [Range<Int>] { stream.isEmpty ? [] : [0..<stream.count] }
}
