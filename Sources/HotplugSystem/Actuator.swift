import Glibc
import HotplugCore
import struct SystemPackage.Errno
import struct SystemPackage.FileDescriptor

/// Writes the online attribute of a device and classifies the kernel's answer.
///
/// - already online: success, once a read-back confirms it (memory answers EINVAL, CPUs succeed);
/// - EBUSY, EAGAIN, ENOMEM: retried with bounded exponential backoff, then failed. ENOMEM is
///   the kernel failing to allocate what onlining needs (the memory map), which pressure can
///   cause and the hot-added memory itself relieves;
/// - EINTR: retried at once (`Sysfs` retries it too; a write made interruptible can still end so);
/// - EPERM, ECANCELED: blocked (SMT control forbids the thread), never retried. A sibling that
///   never ran before is started once and parked by the kernel (`bringup_wait_for_ap`), which
///   answers ECANCELED; later attempts get EPERM;
/// - ENOENT, ENODEV: the device went away;
/// - anything else: failed, with its errno.
public struct Actuator: Sendable {
    public struct Retry: Sendable {
        public var attempts: Int
        public var firstDelay: Duration
        public var maxDelay: Duration
        public init(attempts: Int = 6, firstDelay: Duration = .milliseconds(5), maxDelay: Duration = .milliseconds(200)) {
            self.attempts = attempts
            self.firstDelay = firstDelay
            self.maxDelay = maxDelay
        }
    }

    /// The result of one online operation, with the errno that ended it when it failed.
    public struct Result: Sendable, Equatable {
        public var outcome: OnlineOutcome
        public var attempts: Int
    }

    public let sysfs: any SysfsAccess
    public let retry: Retry

    public init(sysfs: any SysfsAccess, retry: Retry = Retry()) {
        self.sysfs = sysfs
        self.retry = retry
    }

    public func online(_ device: DeviceID, value: String) -> Result {
        var delay = retry.firstDelay
        var attempt = 1
        while true {
            do throws(SysfsError) {
                try sysfs.write(device, device.kind.onlineAttribute, value)
                return Result(outcome: .succeeded, attempts: attempt)
            } catch {
                let retriable = [.resourceBusy, .resourceTemporarilyUnavailable, .noMemory].contains(error.errno)
                switch error.errno {
                case .invalidArgument where (try? sysfs.observe(device)) == .online:
                    return Result(outcome: .succeeded, attempts: attempt)
                case .interrupted where attempt < retry.attempts:
                    attempt += 1
                case _ where retriable && attempt < retry.attempts:
                    Self.sleep(delay)
                    delay = min(delay * 2, retry.maxDelay)
                    attempt += 1
                case _ where error.errno == .notPermitted || (error.errno == .canceled && device.kind == .cpu):
                    return Result(outcome: .blocked(errno: error.errno.rawValue), attempts: attempt)
                case .noSuchFileOrDirectory, Errno(rawValue: ENODEV):
                    return Result(outcome: .gone, attempts: attempt)
                default:
                    return Result(outcome: .failed(errno: error.errno.rawValue), attempts: attempt)
                }
            }
        }
    }

    private static func sleep(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        var request = timespec(tv_sec: Int(seconds), tv_nsec: Int(attoseconds / 1_000_000_000))
        var remaining = timespec()
        while nanosleep(&request, &remaining) != 0 && errno == EINTR { request = remaining }
    }
}
