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

    public init(
        device: String, kind: DeviceKind, index: Int, state: DeviceState, zone: String?, node: Int?, dimm: String?,
        policy: String?, intent: OperatorIntent.Entry? = nil
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
