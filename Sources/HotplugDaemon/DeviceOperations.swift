import Glibc
import HotplugCore
import HotplugSystem

import struct SystemPackage.Errno

/// The operator's `hotplugd offline` and `hotplugd online`: one device after the other through
/// the `Actuator`, each attempt with a time limit, and all or nothing: after the first failure,
/// what was already changed is put back, so a refused removal leaves the machine as it was.
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

        /// Done; refused or failed with nothing left changed; or partly done (see `notRestored`).
        public var status: ExitStatus { failure == nil ? .ok : notRestored.isEmpty ? .failed : .partial }
    }

    let actuator: Actuator

    /// `timeout` bounds each attempt; a write that takes longer is interrupted and not retried.
    public init(sysfs: any SysfsAccess, timeout: Duration, retry: Actuator.Retry = Actuator.Retry()) {
        actuator = Actuator(sysfs: sysfs, retry: retry, timeLimit: timeout)
    }

    /// Takes `plan` offline in its order; on a failure puts back online, with `restore`'s values
    /// and in the reverse order, what it took offline.
    public func offline(_ plan: [DeviceID], restore: [DeviceID: String]) -> Outcome {
        run(plan, change: actuator.offline, undo: { actuator.online($0, value: restore[$0] ?? "1") })
    }

    /// Brings `devices` online in ascending order with `values`; on a failure takes back offline
    /// what it onlined.
    public func online(_ devices: [DeviceID], values: [DeviceID: String]) -> Outcome {
        run(devices.sorted(), change: { actuator.online($0, value: values[$0] ?? "1") }, undo: actuator.offline)
    }

    private func run(
        _ devices: [DeviceID], change: (DeviceID) -> Actuator.Result, undo: (DeviceID) -> Actuator.Result
    ) -> Outcome {
        var outcome = Outcome()
        for device in devices {
            let result = change(device)
            guard result.outcome == .succeeded else {
                outcome.failure = Failure(device: device, outcome: result.outcome, attempts: result.attempts)
                break
            }
            outcome.changed.append(device)
        }
        guard outcome.failure != nil else { return outcome }
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
