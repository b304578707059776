/// The fields of Linux's `/proc/self/stat` and `/proc/stat` that the `process_*` metrics
/// need, parsed from their bytes (the caller reads the files).
///
/// `/proc/self/stat` is one line: `pid (comm) state ppid ...`; `comm` is the executable's
/// name, which may hold spaces and parentheses, so fields are counted from the last `)`.
/// Field numbers below are those of proc(5), counting from 1.
package struct ProcessStat: Sendable, Equatable {
    /// Field 14: user-mode CPU time, clock ticks.
    package var userTicks: UInt64
    /// Field 15: kernel-mode CPU time, clock ticks.
    package var systemTicks: UInt64
    /// Field 22: when the process started, clock ticks after boot.
    package var startTicks: UInt64
    /// Field 23: virtual memory size, bytes.
    package var virtualBytes: UInt64
    /// Field 24: resident set size, pages.
    package var residentPages: UInt64

    package init(userTicks: UInt64, systemTicks: UInt64, startTicks: UInt64, virtualBytes: UInt64, residentPages: UInt64) {
        self.userTicks = userTicks
        self.systemTicks = systemTicks
        self.startTicks = startTicks
        self.virtualBytes = virtualBytes
        self.residentPages = residentPages
    }

    /// Parses `/proc/self/stat`; nil when the line does not have the expected shape.
    package static func parse(_ bytes: some Collection<UInt8>) -> ProcessStat? {
        let line = Array(bytes)
        guard let close = line.lastIndex(of: UInt8(ascii: ")")) else { return nil }
        // After ") ": field 3 (state) onwards.
        let fields = line[(close + 1)...].split(separator: UInt8(ascii: " "), omittingEmptySubsequences: true)
        func field(_ number: Int) -> UInt64? {
            let index = number - 3
            guard index < fields.count else { return nil }
            return decimal(fields[index].filter { $0 != UInt8(ascii: "\n") })
        }
        guard let user = field(14), let system = field(15), let start = field(22), let virtual = field(23),
              let resident = field(24) else { return nil }
        return ProcessStat(userTicks: user, systemTicks: system, startTicks: start, virtualBytes: virtual,
                           residentPages: resident)
    }

    /// The `btime` line of `/proc/stat`: boot time, seconds since the Unix epoch.
    package static func bootTime(procStat bytes: some Collection<UInt8>) -> UInt64? {
        for line in Array(bytes).split(separator: UInt8(ascii: "\n")) {
            let words = line.split(separator: UInt8(ascii: " "), omittingEmptySubsequences: true)
            if words.count == 2, Array(words[0]) == Array("btime".utf8) { return decimal(words[1]) }
        }
        return nil
    }

    private static func decimal(_ digits: some Collection<UInt8>) -> UInt64? {
        guard !digits.isEmpty, digits.count <= 19 else { return nil }
        var value: UInt64 = 0
        for byte in digits {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            value = value * 10 + UInt64(byte - UInt8(ascii: "0"))
        }
        return value
    }
}

/// The standard Prometheus `process_*` families, as exposition text (format 0.0.4).
package struct ProcessMetricsSample: Sendable, Equatable {
    package var cpuSeconds: Double
    package var residentBytes: UInt64
    package var virtualBytes: UInt64
    package var openFDs: Int
    package var maxFDs: UInt64
    package var startTimeSeconds: Double

    package init(cpuSeconds: Double, residentBytes: UInt64, virtualBytes: UInt64, openFDs: Int, maxFDs: UInt64,
                 startTimeSeconds: Double) {
        self.cpuSeconds = cpuSeconds
        self.residentBytes = residentBytes
        self.virtualBytes = virtualBytes
        self.openFDs = openFDs
        self.maxFDs = maxFDs
        self.startTimeSeconds = startTimeSeconds
    }

    /// From the parsed files: `ticksPerSecond` is `sysconf(_SC_CLK_TCK)`, `pageSize` the page size.
    package init(stat: ProcessStat, bootTime: UInt64, ticksPerSecond: UInt64, pageSize: UInt64, openFDs: Int, maxFDs: UInt64) {
        let ticks = Double(max(ticksPerSecond, 1))
        self.init(cpuSeconds: Double(stat.userTicks + stat.systemTicks) / ticks,
                  residentBytes: stat.residentPages * pageSize, virtualBytes: stat.virtualBytes, openFDs: openFDs,
                  maxFDs: maxFDs, startTimeSeconds: Double(bootTime) + Double(stat.startTicks) / ticks)
    }

    /// HELP, TYPE and value of each family, appended to `bytes`.
    package func appendExposition(to bytes: inout [UInt8]) {
        func family(_ name: String, _ type: String, _ help: String, _ value: String) {
            bytes.append(contentsOf: "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n\(name) \(value)\n".utf8)
        }
        family("process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.", "\(cpuSeconds)")
        family("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", "\(residentBytes)")
        family("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", "\(virtualBytes)")
        family("process_open_fds", "gauge", "Number of open file descriptors.", "\(openFDs)")
        family("process_max_fds", "gauge", "Maximum number of open file descriptors.", "\(maxFDs)")
        family("process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.",
               "\(startTimeSeconds)")
    }
}
