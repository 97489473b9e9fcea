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
    /// A memory block whose driver took it back (see `DecisionCore.driverManaged`): its offline
    /// and removal are said once per burst, not per block.
    var takenByDriver = false

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
