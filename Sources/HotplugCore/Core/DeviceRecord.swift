/// All the core knows about one device.
///
/// The state lives in the machine alone; a memory block's reading (`block`) is its node, zones and
/// DIMM, and its `online` flag is derived from the machine whenever the block is handed to the
/// policy (`DecisionCore.policyBlock`), so the two can never disagree.
public struct DeviceRecord: Sendable, Equatable {
    public internal(set) var machine: DeviceMachine
    /// For memory blocks: the last reading of node, zones and DIMM.
    public internal(set) var block: MemoryBlock?
    /// For CPUs: the node from its `nodeN` link. Memory keeps its node in `block`.
    var cpuNode: Int?
    /// Whether the policy may online the device: true for devices that were hot-added or found at
    /// start, false once something other than hotplugd took it offline (that is somebody's intent).
    public internal(set) var managed: Bool
    /// When its `add` event came, for the time-to-online metric.
    var addedAt: ContinuousClock.Instant?
    /// For a memory block: whether a driver added it and manages it (see `DecisionCore.classify`);
    /// nil until it has been online.
    var driverManaged: Bool?
    /// A memory block whose driver took it back: its offline and removal are said once per
    /// burst, not per block.
    var takenByDriver = false
    /// When hotplugd saw the device enter its state (seconds since the epoch); nil for a state it
    /// found at start, which began before it looked.
    var stateSince: Int?
    /// The errno of the write that left it `failed` or `blocked`.
    var errno: Int32?
    /// From its `add` event to online, for a device that came online after a hot-add.
    var timeToOnline: Duration?

    init(state: DeviceState = .absent, managed: Bool = true) {
        self.machine = DeviceMachine(state: state)
        self.managed = managed
    }

    public var state: DeviceState { machine.state }
    public var node: Int? { block?.node ?? cpuNode }
    /// The zone of an online block.
    public var zone: Zone? { state == .online ? block?.validZones.first : nil }
    /// Whether this record counts as present (not removed and not merely never seen).
    public var isPresent: Bool { state != .removed && state != .absent }
}
