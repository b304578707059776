internal import CUV

/// Wall-clock time, for timestamps only (pacing uses `EventLoop.nanoseconds`).
package enum WallClock {
    package static func unixMilliseconds() -> Int64 {
        var now = uv_timeval64_t()
        uv_gettimeofday(&now)
        return now.tv_sec * 1000 + Int64(now.tv_usec / 1000)
    }
}

/// Monotonic time where no loop is at hand (a call's log budget).
package enum MonotonicClock {
    package static func milliseconds() -> UInt64 { uv_hrtime() / 1_000_000 }
}
