import Glibc

import struct SystemPackage.Errno

/// Keeps the daemon's memory in RAM. Hot-add is what a machine short of memory waits for: the
/// daemon that onlines the new memory must not itself be waiting for its pages to come back
/// from swap, or be the one the reclaim throws out.
public enum MemoryLock {
    /// mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT): every page the daemon has touched and
    /// will touch stays resident. With MCL_ONFAULT a page is locked when first used, so the
    /// parts of the binary never run are not read in just to be locked. Needs CAP_IPC_LOCK (or
    /// a large enough RLIMIT_MEMLOCK); the error is returned for the caller to report.
    public static func lockAll() -> Errno? {
        mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) == 0 ? nil : Errno(rawValue: errno)
    }
}
