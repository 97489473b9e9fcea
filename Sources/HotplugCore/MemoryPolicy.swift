/// Decides how offline memory blocks are onlined: which zone, or not at all.
///
/// `auto-movable` follows the kernel's auto-movable policy (mm/memory_hotplug.c,
/// `auto_movable_zone_for_pfn`): a memory device goes to ZONE_MOVABLE only if all of it fits
/// under `ratio` x the kernel-zone memory present at boot, system-wide and, when NUMA-aware,
/// on its node; otherwise all of it goes to a kernel zone, so that a DIMM stays removable as a unit.
public struct MemoryPolicy: Sendable {
    public let config: Config.Memory
    public let pagesPerBlock: Int
    private let pageSize: Int

    public init(config: Config.Memory, blockSizeBytes: Int, pageSize: Int = 4096) {
        self.config = config
        self.pageSize = pageSize
        self.pagesPerBlock = max(1, blockSizeBytes / pageSize)
    }

    /// Decides for every offline block of `blocks`. Blocks that share a firmware node form one
    /// memory device and are decided together; all the device's blocks, online ones included,
    /// must be passed so that its size and current zone are known.
    public func decide(_ blocks: [MemoryBlock], accounting: MemoryAccounting) -> [DeviceID: PolicyDecision] {
        decideExplaining(blocks, accounting: accounting).decisions
    }

    /// `decide`, with the reason for each device that auto-movable put in a kernel zone, keyed by
    /// the device's offline blocks: a figure an operator can check against the kernel's.
    public func decideExplaining(
        _ blocks: [MemoryBlock], accounting: MemoryAccounting
    ) -> (decisions: [DeviceID: PolicyDecision], kernelZoneReasons: [([DeviceID], String)]) {
        var decisions: [DeviceID: PolicyDecision] = [:]
        var reasons: [([DeviceID], String)] = []
        var accounting = accounting
        for group in Self.devices(blocks) {
            let (decided, reason) = decide(device: group, accounting: accounting)
            if let reason { reasons.append((decided.map(\.0), reason)) }
            for (id, decision) in decided {
                decisions[id] = decision
                // Later devices in the same batch see this one's movable memory, as in the kernel,
                // which onlines one device after the other.
                if decision == .online(.onlineMovable),
                    let block = group.first(where: { $0.id == id })
                {
                    accounting.movablePages[block.node ?? 0, default: 0] += pagesPerBlock
                }
            }
        }
        return (decisions, reasons)
    }

    /// Groups blocks into memory devices: by firmware node, in ascending order of first block;
    /// a block without one is a device of its own.
    public static func devices(_ blocks: [MemoryBlock]) -> [[MemoryBlock]] {
        var byFirmwareNode: [String: Int] = [:]
        var groups: [[MemoryBlock]] = []
        for block in blocks.sorted(by: { $0.id < $1.id }) {
            if let firmwareNode = block.firmwareNode, let index = byFirmwareNode[firmwareNode] {
                groups[index].append(block)
            } else {
                if let firmwareNode = block.firmwareNode { byFirmwareNode[firmwareNode] = groups.count }
                groups.append([block])
            }
        }
        return groups
    }

    private func decide(
        device: [MemoryBlock], accounting: MemoryAccounting
    ) -> ([(DeviceID, PolicyDecision)], kernelZoneReason: String?) {
        let offline = device.filter { !$0.online }
        guard let first = offline.first else { return ([], nil) }
        let rule = config.rule(forNode: first.node)
        if !(rule?.autoOnline ?? config.autoOnline) {
            let reason =
                rule?.autoOnline == false
                ? "the memory.node rule for node \(first.node ?? 0) has auto_online = false"
                : "memory.auto_online is false"
            return (offline.map { ($0.id, .leave(reason: reason)) }, nil)
        }
        let onlineType = rule?.onlineType ?? config.onlineType
        if let value = OnlineValue(onlineType) { return (offline.map { ($0.id, .online(value)) }, nil) }
        let reason = kernelZoneReason(device: device, offline: offline, accounting: accounting)
        return (offline.map { ($0.id, .online(reason == nil ? .onlineMovable : .onlineKernel)) }, reason)
    }

    /// Why auto-movable puts the device in a kernel zone, or nil for ZONE_MOVABLE.
    private func kernelZoneReason(
        device: [MemoryBlock], offline: [MemoryBlock], accounting: MemoryAccounting
    ) -> String? {
        // Part of the device already in a kernel zone: the rest follows, or it could never be removed.
        if device.contains(where: { $0.online && !$0.isMovable }) { return "part of the device is in a kernel zone" }
        if let block = offline.first(where: { !$0.allowsMovable }) { return "\(block.id.name) may not go to Movable" }
        let remaining = offline.count * pagesPerBlock
        let ratio = config.autoMovableRatio
        if accounting.totalMovablePages + remaining > ratio * accounting.totalEarlyKernelPages / 100 {
            return "movable \(mib(accounting.totalMovablePages)) + \(mib(remaining)) would exceed \(ratio)% of "
                + "\(mib(accounting.totalEarlyKernelPages)) of kernel memory at boot"
        }
        if config.autoMovableNUMAAware, let node = offline.first?.node {
            let movable = accounting.movablePages[node, default: 0]
            let early = accounting.earlyKernelPages[node, default: 0]
            if movable + remaining > ratio * early / 100 {
                return "node \(node): movable \(mib(movable)) + \(mib(remaining)) would exceed \(ratio)% of "
                    + "\(mib(early)) of kernel memory at boot"
            }
        }
        return nil
    }

    private func mib(_ pages: Int) -> String { "\((pages * pageSize) >> 20) MiB" }
}
