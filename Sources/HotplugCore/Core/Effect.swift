/// What the decision core asks of whoever runs it. The core does no I/O: it returns effects, and
/// the results of reads and writes come back to it as inputs (`DecisionCore.answer(_:_:now:)`,
/// `written(_:_:attempts:now:)`, `intentLoaded(_:now:)`).
///
/// Effects are performed in the order they are returned. A read or write is answered before any
/// effect after it is performed and before the next input, so the core never sees the world change
/// between asking and hearing back except through what the answer says. One exception: writes
/// with no read between them may all be performed before the first is answered (each is then
/// answered in order), since the core decided each of them already; see `CoreDriver`.
public enum Effect: Sendable, Equatable {
    /// Read from sysfs; answer with `answer(_:_:now:)`.
    case read(ReadRequest)
    /// Read the operator-intent file again; answer with `intentLoaded(_:now:)`.
    case loadIntent
    /// Write the value to the device's online attribute (retries and time limit are the writer's);
    /// answer with `written(_:_:attempts:now:)`.
    case write(DeviceID, OnlineValue)
    /// Store these intent changes (nil drops an entry). Comes before any write it protects.
    case persistIntent([DeviceID: OperatorIntent.Entry?])
    case log(LogRecord)
    /// A device changed, for hooks and metrics.
    case changed(DeviceChange)
    /// An online write ended, for metrics.
    case finished(OnlineOperation)
}

/// A sysfs read the core needs, with what it will do with the answer.
public struct ReadRequest: Sendable, Equatable {
    public enum What: Sendable, Equatable {
        /// Every CPU and memory block, the block size and the node membership.
        case everything
        /// These devices: state and node; for memory blocks also the DIMM (`firmware_node`) and
        /// `valid_zones`, which for an offline block is read only once it has its node link, or
        /// always with `zonesWithoutNode` (see `Sysfs.memoryBlock`).
        case devices([DeviceID], zonesWithoutNode: Bool)
        /// The states of the blocks from `from` upward while each is offline, at most `atMost`:
        /// the blocks that follow one just onlined, added with it. The first that is not offline
        /// (absent included) ends the run and is in the answer.
        case offlineRun(from: DeviceID, atMost: Int)
        /// The blocks next to a DIMM's known blocks that carry the same `firmware_node`: walking down
        /// from `below` and up from `above` while the link matches, each read like `devices`.
        case dimm(firmwareNode: String, below: DeviceID?, above: DeviceID?)
        /// The node, zone and DIMM of a device just onlined; `nodeHint` is tried before listing its
        /// directory, and a `zone` the write determined (`online_movable`) is not read.
        case onlined(DeviceID, nodeHint: Int?, zone: Zone?)
        /// The firmware's memory map (`Readings.firmwareRAM`), to tell memory a driver manages.
        case firmwareRAM
        /// The dax devices' ranges (`Readings.daxRAM`), to tell dax/kmem memory.
        case daxRAM
        /// The node links of these memory blocks (`Readings.nodes`), in ascending order up to the
        /// first without one: the kernel links a hot-added range's blocks in that order once it
        /// has created them all, so the ones after an unlinked block are looked at next time. The
        /// node just found (first `hint`) is tried before a block's directory is listed.
        case nodes([DeviceID], hint: Int?)
    }

    public let what: What
    let purpose: ReadPurpose

    init(_ what: What, for purpose: ReadPurpose) {
        self.what = what
        self.purpose = purpose
    }
}

/// The answer to a `ReadRequest`.
public struct Readings: Sendable, Equatable {
    public var devices: [DeviceID: DeviceReading]
    /// Devices that could not be read, and why.
    public var failures: [DeviceID: String]
    /// With `.everything`: the memory block size, and the error that ended the scan early, if any.
    public var blockSizeBytes: Int?
    public var scanError: String?
    /// With `.everything` and `.firmwareRAM`: the "System RAM" ranges of the firmware's memory map
    /// (`/sys/firmware/memmap`), nil where there is none. Boot memory and ACPI hot-added DIMMs are
    /// in it; memory a driver adds and manages itself (virtio-mem, dax/kmem) never is
    /// (mm/memory_hotplug.c adds only plain "System RAM" resources to it).
    public var firmwareRAM: [ClosedRange<Int>]?
    /// With `.everything` and reads of memory blocks: the dax devices' ranges (dax/kmem memory),
    /// nil when not read or unreadable.
    public var daxRAM: [ClosedRange<Int>]?
    /// With `.nodes`: the blocks found linked to a node, and the node.
    public var nodes: [DeviceID: Int] = [:]
    /// What else could not be read (the firmware's memory map, the dax ranges), each with what the
    /// core does without it.
    public var otherFailures: [String] = []

    public init(
        devices: [DeviceID: DeviceReading] = [:], failures: [DeviceID: String] = [:], blockSizeBytes: Int? = nil,
        scanError: String? = nil, firmwareRAM: [ClosedRange<Int>]? = nil, daxRAM: [ClosedRange<Int>]? = nil
    ) {
        self.daxRAM = daxRAM
        self.devices = devices
        self.failures = failures
        self.blockSizeBytes = blockSizeBytes
        self.scanError = scanError
        self.firmwareRAM = firmwareRAM
    }
}

/// One device as sysfs showed it. A device that is not there reads `.absent`.
public struct DeviceReading: Sendable, Equatable {
    public var state: ObservedState
    public var node: Int?
    /// Memory blocks: node, zones and DIMM as read (its `online` flag is not used).
    public var block: MemoryBlock?

    public init(state: ObservedState, node: Int? = nil, block: MemoryBlock? = nil) {
        self.state = state
        self.node = node ?? block?.node
        self.block = block
    }

    public static let absent = DeviceReading(state: .absent)
}

/// What the intent file held when read.
public enum IntentReading: Sendable, Equatable {
    case loaded(OperatorIntent, badLines: [OperatorIntent.BadLine])
    case unreadable(String)
}

/// Why the core asked for a read: where it goes on once the answer comes.
enum ReadPurpose: Sendable, Equatable {
    /// The start-up scan; coldplug and acting follow unless it is only a look (`status`).
    case start(act: Bool)
    /// Events were lost: everything is read again and reconciled.
    case rescan
    /// Devices named by events but never seen (`unknown`), and memory blocks whose `online` event
    /// is to be logged with the zone and node they went to: read before the events are applied.
    case discover([Uevent], unknown: Set<DeviceID>)
    /// Devices just added, read once their events are applied; then `touched` are acted on.
    case added(touched: [DeviceID])
    /// Memory blocks being decided that lacked a node, DIMM or zones.
    case decide(MemoryPass)
    /// A device just onlined: its node and zone, then the write's outcome.
    case onlined(WriteResult)
    /// The blocks after one onlined with a type of its own, which may have been added with it.
    case following
    /// Memory blocks just online that the memory map known so far does not cover: whether a
    /// driver manages them (see `DecisionCore.classify`).
    case classify([DeviceID])
}

/// How a write ended, held while the device's new zone and node are read.
struct WriteResult: Sendable, Equatable {
    var value: OnlineValue
    var outcome: OnlineOutcome
    var attempts: Int
    /// In kernel mode, for a block added in this run: who onlined it (see `DecisionCore.Onliner`).
    var by: DecisionCore.Onliner?
}

/// Memory blocks on their way to a decision, and what was read for them on the way.
struct MemoryPass: Sendable, Equatable {
    var blocks: Set<DeviceID>
    /// Blocks read in this pass: not read again however they turned out.
    var read: Set<DeviceID> = []
    /// Blocks whose zones were read without waiting for their node link any longer.
    var zonesRead: Set<DeviceID> = []
    /// DIMMs whose neighbours were looked for in this pass.
    var walked: Set<String> = []
}
