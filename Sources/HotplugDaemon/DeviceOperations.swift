import Glibc
import HotplugCore
import HotplugSystem

import struct SystemPackage.Errno

/// The operator's `hotplugd offline` and `hotplugd online`: one device after the other through
/// the `Actuator`, each attempt with a time limit, and all or nothing: after the first failure,
/// or once asked to stop (SIGINT, SIGTERM), what was already changed is put back, so a refused or
/// interrupted removal leaves the machine as it was.
public struct DeviceOperations {
    public struct Failure: Sendable, Equatable, CustomStringConvertible {
        public var device: DeviceID
        public var outcome: OnlineOutcome
        public var attempts: Int

        public var description: String {
            let tries = attempts > 1 ? " after \(attempts) attempts" : ""
            return switch outcome {
            case .succeeded: "\(device): done"
            case .gone: "\(device): removed during the write"
            case .failed(errno: ETIMEDOUT): "\(device): timed out"
            case .failed(let errno), .blocked(let errno):
                "\(device): \(Errno(rawValue: errno)) (errno \(errno))\(tries)"
            }
        }
    }

    public struct Outcome: Sendable, Equatable {
        /// Devices changed and left changed.
        public var changed: [DeviceID] = []
        /// The device that refused, and how.
        public var failure: Failure?
        /// Devices changed before the failure and put back.
        public var restored: [DeviceID] = []
        /// Devices changed before the failure that could not be put back.
        public var notRestored: [Failure] = []
        /// The signal that stopped the work before `stoppedAt` (nil: not stopped).
        public var stoppedBy: Int32?
        public var stoppedAt: DeviceID?

        /// Done; refused or failed with nothing left changed; partly done (see `notRestored`); or
        /// stopped by a signal (128 + the signal, whatever was put back).
        public var status: ExitStatus {
            switch stoppedBy {
            case SIGINT: .interrupted
            case SIGTERM: .terminated
            default: failure == nil ? .ok : notRestored.isEmpty ? .failed : .partial
            }
        }
    }

    let actuator: Actuator

    /// `timeout` bounds each attempt; a write that takes longer is interrupted and not retried.
    public init(sysfs: any SysfsAccess, timeout: Duration, retry: Actuator.Retry = Actuator.Retry()) {
        actuator = Actuator(sysfs: sysfs, retry: retry, timeLimit: timeout)
    }

    /// Takes `plan` offline in its order; on a failure, or when `stop` gives a signal before the
    /// next device, puts back online, with `restore`'s values and in the reverse order, what it
    /// took offline.
    public func offline(
        _ plan: [DeviceID], restore: [DeviceID: String], stop: () -> Int32? = { nil }
    ) -> Outcome {
        run(plan, change: actuator.offline, undo: { actuator.online($0, value: restore[$0] ?? "1") }, stop: stop)
    }

    /// Brings `devices` online in ascending order with `values`; on a failure or a stop takes back
    /// offline what it onlined.
    public func online(_ devices: [DeviceID], values: [DeviceID: String], stop: () -> Int32? = { nil }) -> Outcome {
        run(
            devices.sorted(), change: { actuator.online($0, value: values[$0] ?? "1") }, undo: actuator.offline,
            stop: stop)
    }

    private func run(
        _ devices: [DeviceID], change: (DeviceID) -> Actuator.Result, undo: (DeviceID) -> Actuator.Result,
        stop: () -> Int32?
    ) -> Outcome {
        var outcome = Outcome()
        for device in devices {
            if let signal = stop() {
                outcome.stoppedBy = signal
                outcome.stoppedAt = device
                break
            }
            let result = change(device)
            guard result.outcome == .succeeded else {
                outcome.failure = Failure(device: device, outcome: result.outcome, attempts: result.attempts)
                break
            }
            outcome.changed.append(device)
        }
        guard outcome.failure != nil || outcome.stoppedBy != nil else { return outcome }
        for device in outcome.changed.reversed() {
            let result = undo(device)
            if result.outcome == .succeeded {
                outcome.restored.append(device)
            } else {
                outcome.notRestored.append(Failure(device: device, outcome: result.outcome, attempts: result.attempts))
            }
        }
        outcome.changed = outcome.notRestored.map(\.device)
        return outcome
    }
}
