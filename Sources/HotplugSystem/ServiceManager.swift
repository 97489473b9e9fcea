import CHotplug
import Glibc

/// The service manager's side channel (sd_notify(3)): readiness, status, reloads, the watchdog.
/// Outside systemd (no `NOTIFY_SOCKET`) every call does nothing.
public enum ServiceManager {
    /// Sends newline-separated assignments such as `READY=1` or `STATUS=...`.
    public static func notify(_ assignments: String...) {
        _ = sd_notify(0, assignments.joined(separator: "\n"))
    }

    /// The interval within which systemd expects `WATCHDOG=1` (WatchdogSec=), if it expects any.
    public static var watchdogInterval: Duration? {
        var microseconds: UInt64 = 0
        guard sd_watchdog_enabled(0, &microseconds) > 0, microseconds > 0 else { return nil }
        return .microseconds(Int64(clamping: microseconds))
    }

    /// CLOCK_MONOTONIC in microseconds, which systemd wants beside `RELOADING=1`.
    public static var monotonicMicroseconds: UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1000
    }

    /// CLOCK_MONOTONIC_COARSE in microseconds: as of the last tick, and read without the clock source.
    public static var coarseMonotonicMicroseconds: UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC_COARSE, &now)
        return UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1000
    }
}
