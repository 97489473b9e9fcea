import HotplugCore

/// All the daemon knows about one device.
struct DeviceRecord {
    var machine: DeviceMachine
    /// For memory blocks: the last reading of node, zones and DIMM.
    var block: MemoryBlock?
    var node: Int?
    /// Whether the policy may online the device: true for devices that were hot-added or found at
    /// start, false once something other than hotplugd took it offline (that is somebody's intent).
    var managed: Bool
    /// When its `add` event came, for the time-to-online metric.
    var addedAt: ContinuousClock.Instant?

    init(state: DeviceState = .absent, managed: Bool = true) {
        self.machine = DeviceMachine(state: state)
        self.managed = managed
    }

    var state: DeviceState { machine.state }
}
