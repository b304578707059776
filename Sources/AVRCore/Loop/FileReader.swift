import AVRProtocol
#if canImport(Glibc)
import Glibc
#endif

/// Reads a whole (small) file at start-up, e.g. the ambient noise loop.
package enum FileReader {
    package static func read(path: String, limit: Int = 64 * 1024 * 1024) -> [UInt8]? {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if count < 0 { return nil }
            if count == 0 { return bytes }
            bytes.append(contentsOf: chunk[0..<count])
            if bytes.count > limit { return nil }
        }
    }

    /// What is at `path`, found by opening it as start-up will: readable, missing (`ENOENT`,
    /// `ENOTDIR`), unreadable (`EACCES`, `EPERM`, or any other reason it cannot be opened) or
    /// a directory. The configuration's errors say which.
    package static func status(path: String) -> Configuration.FileStatus {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            let reason = errno
            return reason == ENOENT || reason == ENOTDIR ? .missing : .unreadable
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { return .unreadable }
        return (info.st_mode & S_IFMT) == S_IFDIR ? .directory : .readable
    }
}
