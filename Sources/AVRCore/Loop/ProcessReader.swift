import AVRProtocol
#if canImport(Glibc)
import Glibc
#endif

/// Reads what the `process_*` metrics report from `/proc` and the kernel's limits, at each
/// scrape (a few small reads, seconds apart; never on the audio path).
package enum ProcessReader {
    /// nil where `/proc` is not there (not Linux) or does not read as expected.
    package static func sample() -> ProcessMetricsSample? {
        guard let statBytes = FileReader.read(path: "/proc/self/stat", limit: 64 * 1024),
              let stat = ProcessStat.parse(statBytes),
              let procStat = FileReader.read(path: "/proc/stat", limit: 4 * 1024 * 1024),
              let boot = ProcessStat.bootTime(procStat: procStat) else { return nil }
        var limit = rlimit()
        let maxFDs: UInt64 = getrlimit(RLIMIT_NOFILE_VALUE, &limit) == 0 ? UInt64(limit.rlim_cur) : 0
        return ProcessMetricsSample(stat: stat, bootTime: boot, ticksPerSecond: UInt64(max(sysconf(Int32(_SC_CLK_TCK)), 1)),
                                    pageSize: UInt64(max(sysconf(Int32(_SC_PAGESIZE)), 1)),
                                    openFDs: openFileDescriptors(), maxFDs: maxFDs)
    }

    /// Entries of `/proc/self/fd`, less the one the directory listing itself holds open.
    static func openFileDescriptors() -> Int {
        guard let directory = opendir("/proc/self/fd") else { return 0 }
        defer { closedir(directory) }
        var count = 0
        while let entry = readdir(directory) {
            let isDot = withUnsafeBytes(of: entry.pointee.d_name) { $0.first == UInt8(ascii: ".") }
            if !isDot { count += 1 }
        }
        return max(count - 1, 0)
    }

    private static var RLIMIT_NOFILE_VALUE: __rlimit_resource_t { __rlimit_resource_t(RLIMIT_NOFILE.rawValue) }
}
