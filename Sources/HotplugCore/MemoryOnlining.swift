/// Who onlines hot-added memory: the kernel, inside the add, with settings hotplugd gives it; or
/// hotplugd, block by block, from userspace.
///
/// With `auto_online_blocks` set the kernel onlines each block in `add_memory_resource`
/// (mm/memory_hotplug.c) before its uevent reaches anyone: as fast as onlining can be, under
/// memory pressure as well, and decided per memory group (a DIMM as a whole, a virtio-mem device
/// with its own Normal memory counted for it), which sysfs does not show userspace. hotplugd
/// compiles its policy into those settings whenever they can say it, and onlines in userspace only
/// what they cannot say.
public enum MemoryOnlining: Sendable, Equatable {
    case kernel(KernelOnlineSettings)
    /// hotplugd writes each block's `state`. With `zones` (the kernel's auto-movable settings, on
    /// Linux 5.16 and later), a block whose rule is auto-movable is written `online` and the kernel
    /// picks its zone by its own policy, memory groups included, once the add is complete (the
    /// write waits for it): no waiting for a DIMM's link, no accounting in userspace. Without,
    /// hotplugd decides auto-movable zones itself (`MemoryPolicy`).
    case userspace(reason: String, zones: KernelOnlineSettings? = nil)

    /// The kernel's settings the policy needs, or why the kernel cannot carry it out.
    public static func plan(_ memory: Config.Memory, kernel: KernelOnlineSupport) -> MemoryOnlining {
        guard memory.kernelOnline else { return .userspace(reason: "memory.kernel_online is false") }
        let zones = kernel.onlinePolicy ? autoMovableSettings(memory) : nil
        guard memory.autoOnline else {
            return .userspace(reason: "memory.auto_online is false: the kernel onlines nothing", zones: zones)
        }
        // The kernel has one setting for every node.
        for rule in memory.nodes {
            if rule.autoOnline == false || (rule.onlineType.map { $0 != memory.onlineType } ?? false) {
                return .userspace(
                    reason: "the memory.node rule for node \(rule.node) differs from [memory]; "
                        + "the kernel has one setting for every node",
                    zones: zones)
            }
        }
        guard kernel.autoOnlineBlocks else {
            return .userspace(reason: "this kernel has no memory/auto_online_blocks", zones: zones)
        }
        var settings = KernelOnlineSettings()
        switch memory.onlineType {
        case .online:
            settings[.autoOnlineBlocks] = "online"
            // `online` means the kernel's default zone, which online_policy=auto-movable would change.
            if kernel.onlinePolicy { settings[.onlinePolicy] = "contig-zones" }
        case .onlineKernel:
            settings[.autoOnlineBlocks] = "online_kernel"
        case .onlineMovable:
            settings[.autoOnlineBlocks] = "online_movable"
        case .autoMovable:
            guard kernel.onlinePolicy else {
                return .userspace(
                    reason: "this kernel has no memory_hotplug.online_policy (Linux 5.16 and later) for auto-movable")
            }
            settings[.autoOnlineBlocks] = "online"
            settings[.onlinePolicy] = "auto-movable"
            settings[.autoMovableRatio] = "\(memory.autoMovableRatio)"
            settings[.autoMovableNUMAAware] = memory.autoMovableNUMAAware ? "Y" : "N"
        }
        return .kernel(settings)
    }

    /// The kernel's auto-movable settings, when any rule of `memory` is auto-movable.
    static func autoMovableSettings(_ memory: Config.Memory) -> KernelOnlineSettings? {
        let types = [memory.onlineType] + memory.nodes.compactMap(\.onlineType)
        guard types.contains(.autoMovable) else { return nil }
        return KernelOnlineSettings([
            .onlinePolicy: "auto-movable", .autoMovableRatio: "\(memory.autoMovableRatio)",
            .autoMovableNUMAAware: memory.autoMovableNUMAAware ? "Y" : "N",
        ])
    }

    /// The settings hotplugd puts in the kernel for this mode (none for plain userspace onlining).
    public var settings: KernelOnlineSettings {
        switch self {
        case .kernel(let settings): settings
        case .userspace(_, let zones): zones ?? KernelOnlineSettings()
        }
    }

    /// In userspace mode: whether the kernel picks auto-movable zones (see `userspace`).
    public var kernelPicksZones: Bool {
        if case .userspace(_, let zones) = self { zones != nil } else { false }
    }

    /// The value hotplugd writes to a block's `state` when it onlines one itself (coldplug, or a
    /// block the kernel left offline): in kernel mode the kernel's own type, so that the kernel
    /// decides the zone exactly as it would have inside the add (`online` follows its online_policy).
    public var kernelValue: OnlineValue? {
        guard case .kernel(let settings) = self, let value = settings[.autoOnlineBlocks] else { return nil }
        return OnlineValue(rawValue: value)
    }

    public var isKernel: Bool { kernelValue != nil }

    /// One line for logs, `status` and `check-config`.
    public var summary: String {
        switch self {
        case .kernel(let settings): "kernel (\(settings))"
        case .userspace(let reason, nil): "userspace (\(reason))"
        case .userspace(let reason, let zones?): "userspace (\(reason)); auto-movable zones by the kernel (\(zones))"
        }
    }
}

/// Which of the kernel's onlining settings exist here.
public struct KernelOnlineSupport: Sendable, Equatable {
    /// `/sys/devices/system/memory/auto_online_blocks`.
    public var autoOnlineBlocks: Bool
    /// `/sys/module/memory_hotplug/parameters/online_policy` and the auto-movable parameters (5.16).
    public var onlinePolicy: Bool

    public init(autoOnlineBlocks: Bool, onlinePolicy: Bool) {
        self.autoOnlineBlocks = autoOnlineBlocks
        self.onlinePolicy = onlinePolicy
    }
}

/// Values for the kernel's onlining settings, as the kernel writes them back when read (`Y`/`N`
/// for its booleans). Settings not named are left as they are.
public struct KernelOnlineSettings: Sendable, Equatable, CustomStringConvertible {
    public enum Setting: String, Sendable, CaseIterable {
        /// `devices/system/memory/auto_online_blocks`: `offline` or the type new blocks get.
        case autoOnlineBlocks = "auto_online_blocks"
        /// `module/memory_hotplug/parameters/…`: how `online` picks a zone, and auto-movable's knobs.
        case onlinePolicy = "online_policy"
        case autoMovableRatio = "auto_movable_ratio"
        case autoMovableNUMAAware = "auto_movable_numa_aware"

        /// Written in this order and put back in the reverse one: auto_online_blocks last on the
        /// way in and first on the way out, so that no block is onlined under half of the settings.
        public static let writeOrder: [Setting] = [
            .onlinePolicy, .autoMovableRatio, .autoMovableNUMAAware, .autoOnlineBlocks,
        ]
    }

    public private(set) var values: [Setting: String] = [:]

    public init(_ values: [Setting: String] = [:]) {
        self.values = values
    }

    public subscript(setting: Setting) -> String? {
        get { values[setting] }
        set { values[setting] = newValue }
    }

    /// The settings named, in the order they are written (auto_online_blocks last).
    public var settings: [Setting] { Setting.writeOrder.filter { values[$0] != nil } }

    public var description: String {
        Setting.allCases.filter { values[$0] != nil }.map { "\($0.rawValue)=\(values[$0]!)" }.joined(separator: " ")
    }
}
