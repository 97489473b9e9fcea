/// What hotplugd knows about one memory block, read from sysfs.
public struct MemoryBlock: Sendable, Equatable {
    public var id: DeviceID
    /// The NUMA node from the block's `nodeN` link; nil when the kernel gave none.
    public var node: Int?
    /// `valid_zones`: for an offline block the zones it may go to, for an online one its zone.
    public var validZones: [Zone]
    /// The target of the `firmware_node` link: the ACPI memory device (DIMM) the block belongs to.
    public var firmwareNode: String?
    public var online: Bool

    public init(id: DeviceID, node: Int?, validZones: [Zone], firmwareNode: String?, online: Bool) {
        self.id = id
        self.node = node
        self.validZones = validZones
        self.firmwareNode = firmwareNode
        self.online = online
    }

    /// An offline block taken in without reading it (written at its `add`, or after the block
    /// before it): nothing known but its name until it is read.
    public static func unread(_ id: DeviceID) -> MemoryBlock {
        MemoryBlock(id: id, node: nil, validZones: [], firmwareNode: nil, online: false)
    }

    /// The zone of an online block, as the kernel names it (`Normal`, `Movable`, `DMA32`, or `none`
    /// when the block spans zones).
    public var zone: Zone? { online ? validZones.first : nil }

    public var isMovable: Bool { zone == .movable }
    public var allowsMovable: Bool { validZones.contains(.movable) }
}

/// Memory in ZONE_MOVABLE and memory the kernel had in its own zones at boot, per node, in pages.
/// The auto-movable ratio compares the two.
public struct MemoryAccounting: Sendable, Equatable {
    public var earlyKernelPages: [Int: Int]
    public var movablePages: [Int: Int]

    public init(earlyKernelPages: [Int: Int] = [:], movablePages: [Int: Int] = [:]) {
        self.earlyKernelPages = earlyKernelPages
        self.movablePages = movablePages
    }

    /// Counts the online blocks: those in ZONE_MOVABLE as movable, the others as kernel memory.
    /// Taken once at start, the kernel-zone figure stands for the memory present at boot.
    public init(blocks: some Sequence<MemoryBlock>, pagesPerBlock: Int) {
        self.init()
        for block in blocks where block.online {
            let node = block.node ?? 0
            if block.isMovable {
                movablePages[node, default: 0] += pagesPerBlock
            } else {
                earlyKernelPages[node, default: 0] += pagesPerBlock
            }
        }
    }

    public var totalEarlyKernelPages: Int { earlyKernelPages.values.reduce(0, +) }
    public var totalMovablePages: Int { movablePages.values.reduce(0, +) }
}
