import HotplugCore
import HotplugSystem

/// The operator's `hotplugd offline` and `hotplugd online`: one device after the other, each with
/// a time limit, and all or nothing: after the first failure, what was already changed is put
/// back, so a refused removal leaves the machine as it was.
public struct DeviceOperations {
    public struct Failure: Sendable, Equatable, CustomStringConvertible {
        public var device: DeviceID
        public var outcome: TimedWrite.Outcome

        public var description: String {
            switch outcome {
            case .succeeded: "\(device): done"
            case .timedOut: "\(device): timed out"
            case .failed(let errno): "\(device): \(errno) (errno \(errno.rawValue))"
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

        /// 0 done; 1 refused or failed, nothing left changed; 3 partly done (see `notRestored`).
        public var exitCode: Int32 { failure == nil ? 0 : notRestored.isEmpty ? 1 : 3 }
    }

    let sysfs: any SysfsAccess
    let timeout: Duration

    public init(sysfs: any SysfsAccess, timeout: Duration) {
        self.sysfs = sysfs
        self.timeout = timeout
    }

    /// Takes `plan` offline in its order; on a failure puts back online, with `restore`'s values
    /// and in the reverse order, what it took offline.
    public func offline(_ plan: [DeviceID], restore: [DeviceID: String]) -> Outcome {
        run(plan, value: { $0.kind == .cpu ? "0" : "offline" }, undo: { restore[$0] ?? "1" })
    }

    /// Brings `devices` online in ascending order with `values`; on a failure takes back offline
    /// what it onlined.
    public func online(_ devices: [DeviceID], values: [DeviceID: String]) -> Outcome {
        run(devices.sorted(), value: { values[$0] ?? "1" }, undo: { $0.kind == .cpu ? "0" : "offline" })
    }

    private func run(
        _ devices: [DeviceID], value: (DeviceID) -> String, undo: (DeviceID) -> String
    ) -> Outcome {
        var outcome = Outcome()
        for device in devices {
            let result = TimedWrite.write(sysfs, device, device.kind.onlineAttribute, value(device), timeout: timeout)
            guard result == .succeeded else {
                outcome.failure = Failure(device: device, outcome: result)
                break
            }
            outcome.changed.append(device)
        }
        guard outcome.failure != nil else { return outcome }
        for device in outcome.changed.reversed() {
            let result = TimedWrite.write(sysfs, device, device.kind.onlineAttribute, undo(device), timeout: timeout)
            if result == .succeeded {
                outcome.restored.append(device)
            } else {
                outcome.notRestored.append(Failure(device: device, outcome: result))
            }
        }
        outcome.changed = outcome.notRestored.map(\.device)
        return outcome
    }
}
