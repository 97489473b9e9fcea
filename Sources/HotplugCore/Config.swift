/// Where uevents come from.
public enum MonitorSource: String, Sendable, CaseIterable, Codable {
    /// `udev` when udevd runs (its control socket exists), `kernel` otherwise.
    case auto
    /// Events re-broadcast by udevd after its rules ran.
    case udev
    /// The kernel's own netlink broadcast; needs no udevd.
    case kernel
}

/// How a memory block is brought online: the values the kernel's `state` attribute takes,
/// plus `auto-movable`, the kernel's auto-movable policy carried out by hotplugd.
public enum MemoryOnlineType: String, Sendable, CaseIterable, Codable {
    case online
    case onlineKernel = "online_kernel"
    case onlineMovable = "online_movable"
    case autoMovable = "auto-movable"
}

/// What hotplugd does with dax/kmem memory (`daxctl reconfigure-device --mode=system-ram`).
public enum DaxMemoryMode: String, Sendable, CaseIterable, Codable {
    /// daxctl onlines it (its default); hotplugd leaves it alone rather than race it.
    case leave
    /// hotplugd onlines it by the memory policy, as any other memory (for `daxctl --no-online`).
    case online
}

/// Whether devices already present and offline when the daemon starts are onlined.
public enum ColdplugMode: String, Sendable, CaseIterable, Codable {
    /// As `always`, except for CPUs when the kernel was booted with `maxcpus=`: those CPUs
    /// are offline on purpose, so they are left alone.
    case auto
    case always
    case never
}

/// The daemon's whole configuration, validated. `Config()` is the set of defaults that applies
/// when no file exists.
public struct Config: Sendable, Equatable {
    public struct Monitor: Sendable, Equatable {
        public var source: MonitorSource = .auto
        /// udevd uses 128 MiB as well: large enough for a burst of thousands of memory blocks.
        public var receiveBufferBytes: Int = 128 << 20
        public init() {}
    }

    public struct CPU: Sendable, Equatable {
        public var autoOnline = true
        public var include: CPUList = .all
        public var exclude: CPUList = .empty
        public var coldplug: ColdplugMode = .auto
        /// Re-online CPUs that somebody else took offline (see `OperatorIntent`).
        public var enforce = false
        public init() {}
    }

    /// A rule for the memory blocks of one NUMA node; unset fields inherit from `[memory]`.
    public struct NodeRule: Sendable, Equatable {
        public var node: Int
        public var autoOnline: Bool?
        public var onlineType: MemoryOnlineType?
        public init(node: Int, autoOnline: Bool? = nil, onlineType: MemoryOnlineType? = nil) {
            self.node = node
            self.autoOnline = autoOnline
            self.onlineType = onlineType
        }
    }

    public struct Memory: Sendable, Equatable {
        public var autoOnline = true
        public var onlineType: MemoryOnlineType = .autoMovable
        /// Percent, as the kernel's `memory_hotplug.auto_movable_ratio`.
        public var autoMovableRatio = 301
        public var autoMovableNUMAAware = true
        public var coldplug: ColdplugMode = .auto
        /// Re-online memory that somebody else took offline (see `OperatorIntent`).
        public var enforce = false
        /// Let the kernel online new blocks inside the add whenever its settings can say this
        /// policy (see `MemoryOnlining`).
        public var kernelOnline = true
        public var dax: DaxMemoryMode = .leave
        public var nodes: [NodeRule] = []
        public init() {}

        public func rule(forNode node: Int?) -> NodeRule? {
            guard let node else { return nil }
            return nodes.first { $0.node == node }
        }
    }

    /// A command run when devices change (see `HookRun`).
    public struct Hook: Sendable, Equatable {
        public var name: String
        /// An absolute path and its arguments; no shell is involved.
        public var command: [String]
        public var events: Set<HookEvent> = [.online]
        public var kinds: Set<DeviceKind> = Set(DeviceKind.allCases)
        /// After it, the command gets SIGTERM, and SIGKILL 5 seconds later.
        public var timeout: Duration = .seconds(30)

        public init(name: String, command: [String]) {
            self.name = name
            self.command = command
        }
    }

    public struct Metrics: Sendable, Equatable {
        /// Where the Prometheus text file goes, for node_exporter's textfile collector; nil writes none.
        public var textfile: String?
        public init() {}
    }

    public var monitor = Monitor()
    public var metrics = Metrics()
    public var cpu = CPU()
    public var memory = Memory()
    public var hooks: [Hook] = []

    public init() {}

    /// Whether offlines by others are overruled for devices of `kind`.
    public func enforces(_ kind: DeviceKind) -> Bool {
        kind == .cpu ? cpu.enforce : memory.enforce
    }

    public static let defaultPath = "/etc/hotplugd/hotplugd.toml"
}
