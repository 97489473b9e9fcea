/// The device changes a hook can ask to hear about.
public enum HookEvent: String, Sendable, Hashable, CaseIterable, Codable {
    /// A device was hot-added (it arrives offline).
    case add
    case online
    /// A device went offline (by hotplugd's operator commands or anyone else).
    case offline
    case remove
    /// The kernel refused to online a device and always will (SMT control).
    case blocked
    /// Onlining failed for good.
    case failed

    /// The event a transition amounts to, or nil for transitions no hook hears of: the first
    /// sight of a device at a scan is not a change of the machine.
    public init?(_ transition: Transition) {
        switch transition.to {
        case .online where transition.from != .absent: self = .online
        case .offline where transition.from == .online || transition.from == .offlining: self = .offline
        case .offline where transition.input == .event(.add): self = .add
        case .removed where transition.from != .absent: self = .remove
        case .blocked: self = .blocked
        case .failed: self = .failed
        default: return nil
        }
    }
}

/// One device change, as hooks are told of it.
public struct DeviceChange: Sendable, Equatable {
    public var device: DeviceID
    public var event: HookEvent
    public var zone: String?
    public var node: Int?

    public init(device: DeviceID, event: HookEvent, zone: String? = nil, node: Int? = nil) {
        self.device = device
        self.event = event
        self.zone = zone
        self.node = node
    }
}

/// One run of a hook's command: the changes of one kind and event in a burst, together, so a
/// DIMM of 64 blocks starts one process, not 64.
///
/// A run names at most `maxDevices` devices: the kernel takes no environment variable longer
/// than 128 KiB (MAX_ARG_STRLEN), and `HOTPLUG_DETAILS` of 1,024 devices is at most 27 KiB
/// (`memory1048575:1023:Movable` is 27 bytes). A larger burst (a 768 GiB DIMM is 6,144 blocks)
/// runs the hook once per part, `HOTPLUG_PART` saying which of how many.
public struct HookRun: Sendable, Equatable {
    public static let maxDevices = 1024

    public var hook: Config.Hook
    public var event: HookEvent
    public var kind: DeviceKind
    public var changes: [DeviceChange]
    /// This run's part of its burst and the number of parts, both from 1.
    public var part = 1
    public var parts = 1

    /// The command's whole environment: a fixed PATH and the HOTPLUG_* variables, nothing of the
    /// daemon's own (NOTIFY_SOCKET and the watchdog's variables must not reach a child).
    public var environment: [String: String] {
        func joined(_ values: [String]) -> String { values.joined(separator: " ") }
        let nodes = Set(changes.compactMap(\.node)).sorted().map(String.init)
        let zones = Set(changes.compactMap(\.zone)).sorted()
        return [
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOTPLUG_HOOK": hook.name,
            "HOTPLUG_ACTION": event.rawValue,
            "HOTPLUG_KIND": kind.rawValue,
            "HOTPLUG_COUNT": "\(changes.count)",
            "HOTPLUG_PART": "\(part)/\(parts)",
            "HOTPLUG_DEVICES": joined(changes.map(\.device.name)),
            "HOTPLUG_NODES": joined(nodes),
            "HOTPLUG_ZONES": joined(zones),
            // One word per device: name:node:zone, `-` where unknown or not applicable.
            "HOTPLUG_DETAILS": joined(
                changes.map { "\($0.device.name):\($0.node.map(String.init) ?? "-"):\($0.zone ?? "-")" }),
        ]
    }

    /// The runs a burst of changes calls for: per hook (in configuration order), per kind and
    /// event it listens to, devices in ascending order, each device once, at most `maxDevices`
    /// per run.
    public static func plan(_ changes: [DeviceChange], hooks: [Config.Hook]) -> [HookRun] {
        var runs: [HookRun] = []
        for hook in hooks {
            for kind in DeviceKind.allCases where hook.kinds.contains(kind) {
                for event in HookEvent.allCases where hook.events.contains(event) {
                    var latest: [DeviceID: DeviceChange] = [:]
                    for change in changes where change.device.kind == kind && change.event == event {
                        latest[change.device] = change
                    }
                    guard !latest.isEmpty else { continue }
                    let sorted = latest.keys.sorted().compactMap { latest[$0] }
                    let parts = (sorted.count + maxDevices - 1) / maxDevices
                    for part in 0..<parts {
                        let slice = sorted[(part * maxDevices)..<min(sorted.count, (part + 1) * maxDevices)]
                        runs.append(
                            HookRun(
                                hook: hook, event: event, kind: kind, changes: Array(slice), part: part + 1,
                                parts: parts))
                    }
                }
            }
        }
        return runs
    }
}
