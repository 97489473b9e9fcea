import Glibc
import HotplugCore

import struct SystemPackage.Errno

/// Writes the online attribute of a device, online or offline, and classifies the kernel's answer.
/// The daemon and the operator's commands both write through it, so both answer the kernel alike.
///
/// - already online / already offline: success, once a read-back confirms it (memory answers
///   EINVAL, CPUs succeed);
/// - EBUSY, EAGAIN, ENOMEM: retried with bounded exponential backoff, then failed. ENOMEM is
///   the kernel failing to allocate what onlining needs (the memory map), which pressure can
///   cause and the hot-added memory itself relieves; EBUSY is also how an offline ends whose
///   pages could not be migrated yet;
/// - EINTR: retried at once (`Sysfs` retries it too; a write made interruptible can still end so),
///   unless the time limit caused it: then `.failed(errno: ETIMEDOUT)`, not retried, since the
///   next attempt would take as long;
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
        public init(attempts: Int = 6, firstDelay: Duration = .milliseconds(5), maxDelay: Duration = .milliseconds(200))
        {
            self.attempts = attempts
            self.firstDelay = firstDelay
            self.maxDelay = maxDelay
        }
    }

    /// The result of one online or offline operation, with the errno that ended it when it failed.
    public struct Result: Sendable, Equatable {
        public var outcome: OnlineOutcome
        public var attempts: Int
        /// The kernel refused the write because the device was in that state already (a read-back
        /// confirmed it): somebody else, or the kernel itself, got there first.
        public var alreadyThere: Bool

        public init(outcome: OnlineOutcome, attempts: Int, alreadyThere: Bool = false) {
            self.outcome = outcome
            self.attempts = attempts
            self.alreadyThere = alreadyThere
        }
    }

    public let sysfs: any SysfsAccess
    public let retry: Retry
    /// How long one attempt may take before its write is interrupted; nil waits as long as the
    /// kernel takes (the daemon's onlines, which end on their own).
    public let timeLimit: Duration?

    public init(sysfs: any SysfsAccess, retry: Retry = Retry(), timeLimit: Duration? = nil) {
        self.sysfs = sysfs
        self.retry = retry
        self.timeLimit = timeLimit
    }

    /// Writes `value` (`1`, or a memory online type) to the device's online attribute.
    public func online(_ device: DeviceID, value: String) -> Result {
        write(device, value: value, reaching: .online)
    }

    /// Takes the device offline: `0` for a CPU, `offline` for memory.
    public func offline(_ device: DeviceID) -> Result {
        write(device, value: device.kind == .cpu ? "0" : "offline", reaching: .offline)
    }

    private func write(_ device: DeviceID, value: String, reaching goal: ObservedState) -> Result {
        var delay = retry.firstDelay
        var attempt = 1
        while true {
            let error: Errno
            switch once(device, value) {
            case .succeeded: return Result(outcome: .succeeded, attempts: attempt)
            case .timedOut: return Result(outcome: .failed(errno: ETIMEDOUT), attempts: attempt)
            case .failed(let errno): error = errno
            }
            let retriable = [.resourceBusy, .resourceTemporarilyUnavailable, .noMemory].contains(error)
            switch error {
            case .invalidArgument where confirms(device, goal):
                return Result(outcome: .succeeded, attempts: attempt, alreadyThere: true)
            case .interrupted where attempt < retry.attempts:
                attempt += 1
            case _ where retriable && attempt < retry.attempts:
                Self.sleep(delay)
                delay = min(delay * 2, retry.maxDelay)
                attempt += 1
            case _ where error == .notPermitted || (error == .canceled && device.kind == .cpu):
                return Result(outcome: .blocked(errno: error.rawValue), attempts: attempt)
            case .noSuchFileOrDirectory, Errno(rawValue: ENODEV):
                return Result(outcome: .gone, attempts: attempt)
            default:
                return Result(outcome: .failed(errno: error.rawValue), attempts: attempt)
            }
        }
    }

    /// One write: on the calling thread without a time limit, else on a thread of its own that
    /// `TimedWrite` interrupts. That thread adds 80 to 340 µs to a write that alone takes 11 to
    /// 36 µs (`hotplugd-bench writes`: 10,000 writes to a tree of plain files), so it is made only
    /// when there is a limit; the daemon's onlines, which end on their own, have none.
    private func once(_ device: DeviceID, _ value: String) -> TimedWrite.Outcome {
        if let timeLimit {
            return TimedWrite.write(sysfs, device, device.kind.onlineAttribute, value, timeout: timeLimit)
        }
        do throws(SysfsError) {
            try sysfs.write(device, device.kind.onlineAttribute, value)
            return .succeeded
        } catch {
            return .failed(error.errno)
        }
    }

    /// Whether the device reads as already in the state the refused write was after. A read that
    /// fails confirms nothing, and the refusal stands.
    private func confirms(_ device: DeviceID, _ goal: ObservedState) -> Bool {
        do throws(SysfsError) {
            return try sysfs.observe(device) == goal
        } catch {
            return false
        }
    }

    private static func sleep(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        var request = timespec(tv_sec: Int(seconds), tv_nsec: Int(attoseconds / 1_000_000_000))
        var remaining = timespec()
        while nanosleep(&request, &remaining) != 0 && errno == EINTR { request = remaining }
    }
}
