import HotplugCore

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
}

/// One write to a device's online attribute and how it ended.
public struct OnlineOperation: Sendable, Equatable {
    public var device: DeviceID
    public var outcome: OnlineOutcome
    /// From the device's `add` event to the end of the write; nil for devices found by a scan.
    public var sinceAdded: Duration?
}
