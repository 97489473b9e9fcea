import Dispatch
import Glibc
import HotplugCore

import struct SystemPackage.Errno

/// A sysfs write with a time limit. Offlining memory migrates its pages inside the write and can
/// take very long; the kernel gives up with EINTR when the writing thread gets a signal. So the
/// write runs on a thread of its own, and when the time is up that thread gets SIGUSR1 (whose
/// handler does nothing and does not restart system calls) until the write returns. The
/// `Actuator` makes each attempt through it when it has a time limit.
enum TimedWrite {
    enum Outcome: Sendable, Equatable {
        case succeeded
        case failed(Errno)
        case timedOut
    }

    static func write(
        _ sysfs: any SysfsAccess, _ device: DeviceID, _ attribute: String, _ value: String, timeout: Duration
    ) -> Outcome {
        installHandler
        let job = Job(sysfs: sysfs, device: device, attribute: attribute, value: value)
        let done = job.done
        var thread = pthread_t()
        let box = Unmanaged.passRetained(job).toOpaque()
        guard
            pthread_create(
                &thread, nil,
                { argument in
                    Unmanaged<Job>.fromOpaque(argument!).takeRetainedValue().run()
                    return nil
                }, box) == 0
        else {
            Unmanaged<Job>.fromOpaque(box).release()
            return .failed(.resourceTemporarilyUnavailable)
        }
        let (seconds, attoseconds) = timeout.components
        let nanoseconds = Int(seconds) * 1_000_000_000 + Int(attoseconds / 1_000_000_000)
        var timedOut = false
        if done.wait(timeout: .now() + .nanoseconds(nanoseconds)) == .timedOut {
            timedOut = true
            // The kernel looks for a pending signal between steps; keep one pending until it returns.
            repeat { pthread_kill(thread, SIGUSR1) } while done.wait(timeout: .now() + .milliseconds(100)) == .timedOut
        }
        pthread_join(thread, nil)
        guard let error = job.result.withLock({ $0 }) ?? nil else { return .succeeded }
        return timedOut && error == .interrupted ? .timedOut : .failed(error)
    }

    private final class Job: @unchecked Sendable {
        let sysfs: any SysfsAccess
        let device: DeviceID
        let attribute: String
        let value: String
        /// nil until the write returned; then the error, if any.
        let result = Locked<Errno??>(nil)
        let done = DispatchSemaphore(value: 0)

        init(sysfs: any SysfsAccess, device: DeviceID, attribute: String, value: String) {
            self.sysfs = sysfs
            self.device = device
            self.attribute = attribute
            self.value = value
        }

        func run() {
            // Threads inherit their creator's signal mask, and Dispatch's workers block signals.
            var unblock = sigset_t()
            sigemptyset(&unblock)
            sigaddset(&unblock, SIGUSR1)
            pthread_sigmask(SIG_UNBLOCK, &unblock, nil)
            var error: Errno?
            do {
                try sysfs.write(device, attribute, value, interruptible: true)
            } catch let failure {
                error = failure.errno
            }
            result.withLock { $0 = .some(error) }
            done.signal()
        }
    }

    /// SIGUSR1 interrupts system calls and does nothing else.
    private static let installHandler: Void = {
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { _ in }
        sigemptyset(&action.sa_mask)
        action.sa_flags = 0
        sigaction(SIGUSR1, &action, nil)
    }()
}
