import ArgumentParser
import Glibc
import HotplugCore
import HotplugDaemon
import HotplugSystem

/// `hotplugd offline ...` and `hotplugd online ...`: take devices out safely before removal, or
/// bring them back.
struct Offline: DeviceDirection {
    static let offline = true

    static let configuration = CommandConfiguration(
        abstract: "Take CPUs or memory offline safely, highest first, all or nothing.",
        discussion: """
            Refuses up front what cannot go (the last online CPU, a CPU without an online file, memory \
            spanning zones, memory in a kernel zone unless --force). Each write may take --timeout seconds \
            and is then interrupted; EBUSY, EAGAIN and ENOMEM are retried. On a failure, puts back online \
            what it took offline.

            Exit status: 0 done; 1 refused or failed, nothing left changed; 3 partly done (a device could \
            not be put back); 64 bad usage (an option, a CPU list or range that does not parse, a device \
            that is not there); 78 invalid configuration.
            """,
        subcommands: [CPUCommand<Offline>.self, Memory.self])

    struct Memory: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Memory blocks of a DIMM, a node, or a range.")
        @OptionGroup var selection: MemorySelection
        @Flag(help: "Try blocks in a kernel zone too; offlining them usually fails.") var force = false
        @OptionGroup var common: DeviceCommandOptions

        func run() throws {
            try common.perform(offline: true, force: force, note: selection.leftOut) {
                devices, blockSize throws(ValidationError) in
                try selection.devices(in: devices, blockSize: blockSize)
            }
        }
    }
}

struct Online: DeviceDirection {
    static let offline = false

    static let configuration = CommandConfiguration(
        abstract: "Bring CPUs or memory online, lowest first, all or nothing.",
        discussion: """
            Memory goes to the zone the policy of the configuration would choose unless --type says \
            otherwise. Writes are timed and retried as for offline. On a failure, takes back offline what \
            it onlined.

            Exit status: 0 done; 1 refused or failed, nothing left changed; 3 partly done (a device could \
            not be taken back offline); 64 bad usage; 78 invalid configuration.
            """,
        subcommands: [CPUCommand<Online>.self, Memory.self])

    struct Memory: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Memory blocks of a DIMM, a node, or a range.")
        @OptionGroup var selection: MemorySelection
        @Option(
            help: "online, online_kernel or online_movable; default: what the policy would choose.",
            completion: .list(["online", "online_kernel", "online_movable"]))
        var type: String?
        @OptionGroup var common: DeviceCommandOptions

        func validate() throws {
            if let type, MemoryOnlineType(rawValue: type) == nil || type == MemoryOnlineType.autoMovable.rawValue {
                throw ValidationError("--type must be online, online_kernel or online_movable")
            }
        }

        func run() throws {
            try common.perform(offline: false, type: type, note: selection.leftOut) {
                devices, blockSize throws(ValidationError) in
                try selection.devices(in: devices, blockSize: blockSize)
            }
        }
    }
}

/// `offline` or `online`: which way a device command goes.
protocol DeviceDirection: ParsableCommand {
    static var offline: Bool { get }
}

/// `hotplugd offline cpu ...` and `hotplugd online cpu ...`: one command type serving both.
struct CPUCommand<Direction: DeviceDirection>: ParsableCommand {
    static var configuration: CommandConfiguration {
        CommandConfiguration(commandName: "cpu", abstract: "CPUs by number.")
    }
    @Argument(help: "CPU numbers or ranges, e.g. 2 3 8-11, or all.") var cpus: [String]
    @OptionGroup var common: DeviceCommandOptions

    func validate() throws { _ = try CPUSelection(cpus) }

    func run() throws {
        let selection = try CPUSelection(cpus)
        try common.perform(offline: Direction.offline) { devices, _ throws(ValidationError) in
            try selection.devices(in: devices)
        }
    }
}

struct DeviceCommandOptions: ParsableArguments {
    @Option(help: "Seconds each write may take before it is interrupted (and not retried).") var timeout: Int = 120
    @OptionGroup var machine: MachineOptions

    func validate() throws {
        // A day is longer than any memory offline should take; 0 would interrupt every write at once.
        guard (1...86_400).contains(timeout) else { throw ValidationError("--timeout must be 1...86400 seconds") }
    }

    /// Scans sysfs once, lets `select` pick devices from what is there (given the memory block
    /// size), and carries out the command. `note` says what the selection left out, if anything.
    func perform(
        offline: Bool, force: Bool = false, type: String? = nil, note: ([DeviceStatus]) -> String? = { _ in nil },
        select: ([DeviceStatus], Int) throws(ValidationError) -> [DeviceID]
    ) throws {
        let context = try CommandContext(machine)
        let devices = context.engine.status()
        let selected: [DeviceID]
        do {
            selected = try select(devices, context.engine.blockSizeBytes)
        } catch {
            // Bad usage all the same, but ArgumentParser would print the root command's usage here.
            throw ExitStatus.usage.reporting(error.message)
        }
        if let left = note(devices) { print("note: \(left)") }
        var present: [DeviceID: OfflinePlan.Device] = [:]
        for device in devices {
            guard let id = DeviceID(kind: device.kind, index: device.index) else { continue }
            present[id] = OfflinePlan.Device(
                id: id, online: device.state == .online,
                hasOnlineAttribute: device.kind == .memory || context.sysfs.has(id, "online"), zone: device.zone)
        }
        // Devices already where the command would take them are left alone, and said to be.
        let already = selected.filter { present[$0]?.online == !offline }
        if !already.isEmpty {
            let state = offline ? "offline" : "online"
            print(
                already.count == selected.count
                    ? "nothing to do: \(DeviceID.runs(already)) \(already.count == 1 ? "is" : "are") \(state) already"
                    : "already \(state), left alone: \(DeviceID.runs(already))")
        }
        let operations = DeviceOperations(sysfs: context.sysfs, timeout: .seconds(timeout))
        StopSignals.trap()
        let outcome: DeviceOperations.Outcome
        if offline {
            let (plan, refusals) = OfflinePlan.offline(selected, present: present, force: force)
            guard refusals.isEmpty else {
                for refusal in refusals { printError("refused: \(refusal)") }
                throw ExitStatus.failed.code
            }
            var restore: [DeviceID: String] = [:]
            for id in plan { if let device = present[id] { restore[id] = OfflinePlan.restoreValue(for: device) } }
            // Recorded first, so the daemon knows the offline events it is about to see are intended.
            recordIntent(for: plan, offline: true, in: context.store)
            outcome = operations.offline(plan, restore: restore) { StopSignals.stop }
            recordIntent(for: plan.filter { !outcome.changed.contains($0) }, offline: false, in: context.store)
        } else {
            let todo = selected.filter { present[$0]?.online == false }
            var values = context.engine.onlineValues(for: todo).mapValues(\.sysfsValue)
            if let type { for id in todo where id.kind == .memory { values[id] = type } }
            recordIntent(for: selected, offline: false, in: context.store)
            outcome = operations.online(todo, values: values) { StopSignals.stop }
        }
        report(outcome, offline: offline)
        if outcome.status != .ok { throw outcome.status.code }
    }

    /// Adds (`offline`) or drops the devices' intent entries. Failing to record intent does not stop
    /// the command: the device change is what the operator needs; the daemon records an offline
    /// it sees as intent anyway, unless `enforce` is set.
    private func recordIntent(for devices: [DeviceID], offline: Bool, in store: IntentStore?) {
        guard let store, !devices.isEmpty else { return }
        let now = IntentStore.now
        do {
            try store.update { intent in
                for id in devices { intent[id] = offline ? .init(origin: .command, since: now) : nil }
            }
        } catch {
            printError("warning: cannot record operator intent in \(store.path): \(error)")
        }
    }

    private func report(_ outcome: DeviceOperations.Outcome, offline: Bool) {
        let done = offline ? "offline" : "online"
        for id in outcome.changed where outcome.failure == nil && outcome.stoppedBy == nil { print("\(id): \(done)") }
        if let signal = outcome.stoppedBy {
            let name = signal == SIGINT ? "SIGINT" : "SIGTERM"
            printError("stopped by \(name) before \(outcome.stoppedAt.map(\.name) ?? "the next device")")
        } else if let failure = outcome.failure {
            printError("\(failure.device) refused to go \(done): \(failure)")
        } else {
            return
        }
        if !outcome.restored.isEmpty {
            printError("put back: \(outcome.restored.map(\.name).joined(separator: " "))")
        }
        for failed in outcome.notRestored { printError("could not put back \(failed)") }
    }
}
