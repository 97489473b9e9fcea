/// One line of `hotplugd status`: a device, its state, and what the policy would do with it.
public struct DeviceStatus: Sendable, Equatable, Codable {
    public var device: String
    public var kind: DeviceKind
    public var index: Int
    public var state: DeviceState
    public var zone: String?
    public var node: Int?
    public var dimm: String?
    /// For an offline device: `online (online_movable)` or `leave offline: <reason>`.
    public var policy: String?
    /// Set when somebody took the device offline and the daemon keeps it so.
    public var intent: OperatorIntent.Entry?
    /// Seconds since the epoch when the daemon saw the device enter its state; nil when it was
    /// already so when the daemon looked first, and from a scan of sysfs.
    public var since: Int?
    /// The errno of the write that left it `failed` or `blocked`.
    public var errno: Int32?
    /// From its `add` event to online, for a device that came online after a hot-add.
    public var secondsToOnline: Double?

    public init(
        device: String, kind: DeviceKind, index: Int, state: DeviceState, zone: String?, node: Int?, dimm: String?,
        policy: String?, intent: OperatorIntent.Entry? = nil, since: Int? = nil, errno: Int32? = nil,
        secondsToOnline: Double? = nil
    ) {
        self.device = device
        self.kind = kind
        self.index = index
        self.state = state
        self.zone = zone
        self.node = node
        self.dimm = dimm
        self.policy = policy
        self.intent = intent
        self.since = since
        self.errno = errno
        self.secondsToOnline = secondsToOnline
    }
}

/// The last hot-add, as one: the devices that came online after their `add` events, those
/// added while earlier ones were still coming online taken with them.
public struct HotAdd: Sendable, Equatable, Codable {
    public var kind: DeviceKind
    public var firstDevice: String
    public var lastDevice: String
    public var devices: Int
    /// From the first `add` event to the last device online.
    public var secondsToOnline: Double
    /// When the last device came online, in seconds since the epoch.
    public var finished: Int
    /// `kernel` when the kernel onlined every device inside its add, else `hotplugd`.
    public var onlinedBy: String

    /// `memory32-95 (64 blocks)`, `cpu2-3 (2 CPUs)`, `cpu5`.
    public var range: String {
        guard devices > 1 else { return firstDevice }
        let last = lastDevice.drop { !$0.isNumber }
        return "\(firstDevice)-\(last) (\(devices) \(kind == .memory ? "blocks" : "CPUs"))"
    }
}

/// One write to a device's online attribute and how it ended.
public struct OnlineOperation: Sendable, Equatable {
    public var device: DeviceID
    public var outcome: OnlineOutcome
    /// From the device's `add` event to the end of the write; nil for devices found by a scan.
    public var sinceAdded: Duration?
    /// The kernel onlined the block inside its add (see `MemoryOnlining`): no write of hotplugd's.
    public var byKernel: Bool

    public init(device: DeviceID, outcome: OnlineOutcome, sinceAdded: Duration?, byKernel: Bool = false) {
        self.device = device
        self.outcome = outcome
        self.sinceAdded = sinceAdded
        self.byKernel = byKernel
    }
}
