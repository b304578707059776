#if canImport(Glibc)
import Glibc
#endif

/// 16-bit PCM mono WAV files: read the caller's script, write what the caller heard.
public enum WAVFile {
    public enum Failure: Error, CustomStringConvertible {
        case cannotOpen(String), notWAV, unsupported(String)
        public var description: String {
            switch self {
            case .cannotOpen(let path): "cannot open \(path)"
            case .notWAV: "not a RIFF/WAVE file"
            case .unsupported(let what): "unsupported WAV: \(what) (need 8000 Hz, mono, 16-bit PCM)"
            }
        }
    }

    public static func readFile(_ path: String) throws(Failure) -> [UInt8] {
        guard let file = fopen(path, "rb") else { throw .cannotOpen(path) }
        defer { fclose(file) }
        var data: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let read = fread(&chunk, 1, chunk.count, file)
            if read <= 0 { break }
            data.append(contentsOf: chunk[0..<read])
        }
        return data
    }

    /// The samples (s16le bytes) of an 8 kHz mono 16-bit file.
    public static func readPCM8k(_ path: String) throws(Failure) -> [UInt8] {
        let data = try readFile(path)
        func u32(_ at: Int) -> Int { Int(data[at]) | Int(data[at + 1]) << 8 | Int(data[at + 2]) << 16 | Int(data[at + 3]) << 24 }
        func u16(_ at: Int) -> Int { Int(data[at]) | Int(data[at + 1]) << 8 }
        guard data.count >= 12, data[0..<4].elementsEqual("RIFF".utf8), data[8..<12].elementsEqual("WAVE".utf8) else {
            throw .notWAV
        }
        var offset = 12
        var formatOK = false
        while offset + 8 <= data.count {
            let size = u32(offset + 4)
            let body = offset + 8
            guard body + size <= data.count || data[offset..<(offset + 4)].elementsEqual("data".utf8) else { throw .notWAV }
            if data[offset..<(offset + 4)].elementsEqual("fmt ".utf8) {
                guard size >= 16 else { throw .notWAV }
                let format = u16(body), channels = u16(body + 2), rate = u32(body + 4), bits = u16(body + 14)
                guard format == 1, channels == 1, rate == 8000, bits == 16 else {
                    throw .unsupported("format \(format), \(channels) ch, \(rate) Hz, \(bits) bit")
                }
                formatOK = true
            } else if data[offset..<(offset + 4)].elementsEqual("data".utf8) {
                guard formatOK else { throw .notWAV }
                let end = min(data.count, body + size)
                return Array(data[body..<(end - (end - body) % 2)])
            }
            offset = body + size + (size & 1)
        }
        throw .notWAV
    }

    /// Writes s16le 8 kHz mono samples as a WAV file.
    public static func writePCM8k(_ pcm: [UInt8], to path: String) throws(Failure) {
        guard let file = fopen(path, "wb") else { throw .cannotOpen(path) }
        defer { fclose(file) }
        var header: [UInt8] = []
        func put32(_ value: Int) { for shift in [0, 8, 16, 24] { header.append(UInt8(truncatingIfNeeded: value >> shift)) } }
        func put16(_ value: Int) { for shift in [0, 8] { header.append(UInt8(truncatingIfNeeded: value >> shift)) } }
        header += Array("RIFF".utf8); put32(36 + pcm.count); header += Array("WAVE".utf8)
        header += Array("fmt ".utf8); put32(16); put16(1); put16(1); put32(8000); put32(16000); put16(2); put16(16)
        header += Array("data".utf8); put32(pcm.count)
        _ = fwrite(header, 1, header.count, file)
        _ = fwrite(pcm, 1, pcm.count, file)
    }
}
