import HotplugCore
import HotplugSystem

/// Memory decisions: waiting for a DIMM to be complete, grouping its blocks, accounting zones.
extension Engine {
    /// Decides the blocks that are ready. Under `auto-movable` a block is not ready before it has
    /// its node (until then the kernel cannot say which zones it may go to, see
    /// `Sysfs.memoryBlock`) and its `firmware_node` link: the kernel binds that once all blocks of
    /// the DIMM exist, and a DIMM must be decided as a whole. A block still not ready
    /// `memoryGroupWait` after the last memory `add` is decided as it is (no ACPI memory device
    /// behind it, or a kernel without NUMA, whose blocks never get a node link).
    func memoryDecisions(for ids: Set<DeviceID>, now: ContinuousClock.Instant) -> [DeviceID: PolicyDecision] {
        var ready = Set<DeviceID>()
        lastMemoryCheck = now
        for id in ids {
            // Rules per node need the node first.
            if !config.memory.nodes.isEmpty && records[id]?.node == nil { readBlock(id) }
            // Only auto-movable needs the DIMM and the zones. An explicit online type is written at
            // once: the kernel holds the device hotplug lock until the whole DIMM is added, so the
            // write waits for the block to be complete, and starts the moment it is.
            guard onlineType(forNode: records[id]?.node) == .autoMovable else {
                waiting[id] = nil
                ready.insert(id)
                continue
            }
            if records[id]?.block?.firmwareNode == nil || records[id]?.block?.validZones.isEmpty == true {
                readBlock(id)
            }
            guard let block = records[id]?.block else { continue }
            if block.validZones.isEmpty || block.firmwareNode == nil {
                let since = waiting[id] ?? now
                waiting[id] = since
                if now < max(since, lastMemoryAdd ?? since) + options.memoryGroupWait { continue }
                if block.validZones.isEmpty { readBlock(id, zonesWithoutNode: true) }
            }
            waiting[id] = nil
            ready.insert(id)
        }
        return memoryPolicyDecisions(for: ready)
    }

    private func readBlock(_ id: DeviceID, zonesWithoutNode: Bool = false) {
        guard let block = try? sysfs.memoryBlock(id, zonesWithoutNode: zonesWithoutNode) else { return }
        setBlock(id, block)
    }

    /// The policy's decision for each of `ids` and for the other offline blocks of their DIMMs.
    /// Costs the size of the DIMMs involved, not of the machine.
    func memoryPolicyDecisions(for ids: Set<DeviceID>) -> [DeviceID: PolicyDecision] {
        guard !ids.isEmpty else { return [:] }
        var wanted = ids
        // Other blocks of the same DIMMs, online or not, tell the policy their size and zone.
        var members = Set<DeviceID>()
        var firmwareNodes = Set<String>()
        // Only auto-movable decides a DIMM as a whole; other online types decide block by block.
        for id in ids where onlineType(forNode: records[id]?.node) == .autoMovable {
            if let firmwareNode = records[id]?.block?.firmwareNode, firmwareNodes.insert(firmwareNode).inserted {
                let dimm = dimmBlocks(around: id, firmwareNode: firmwareNode)
                members.formUnion(dimm)
                wanted.formUnion(dimm.filter { records[$0]!.state == .offline && records[$0]!.managed })
            }
        }
        let blocks = wanted.union(members).compactMap { id -> MemoryBlock? in
            guard let record = records[id], record.state != .removed else { return nil }
            return record.block
        }
        let policy = MemoryPolicy(config: config.memory, blockSizeBytes: pagesPerBlock * 4096)
        return policy.decide(blocks, accounting: accounting()).filter { wanted.contains($0.key) }
    }

    /// Every block of the DIMM around `id`, including those sysfs has but no event announced yet
    /// (those are taken in as added). A DIMM's blocks are consecutive (one physical range), so the
    /// search walks out from a known block in both directions while the neighbour carries the same
    /// `firmware_node`.
    private func dimmBlocks(around id: DeviceID, firmwareNode: String) -> Set<DeviceID> {
        var found: Set<DeviceID> = [id]
        for step in [-1, 1] {
            var index = id.index + step
            while let neighbour = DeviceID(kind: .memory, index: index) {
                if let record = records[neighbour], record.state != .removed, let known = record.block?.firmwareNode {
                    guard known == firmwareNode else { break }
                } else {
                    guard (try? sysfs.link(neighbour, "firmware_node")) == firmwareNode else { break }
                    update(neighbour) { $0.managed = true }
                    apply(.event(.add), to: neighbour, action: "add")
                    readBlock(neighbour)
                    if records[neighbour]?.block?.online == true {
                        apply(.observed(.online), to: neighbour, action: "add")
                    }
                }
                found.insert(neighbour)
                index += step
            }
        }
        return found
    }

    /// Movable memory now and kernel memory at boot, per node.
    func accounting() -> MemoryAccounting {
        MemoryAccounting(earlyKernelPages: bootKernelPages, movablePages: movablePages.filter { $0.value != 0 })
    }

    func onlineType(forNode node: Int?) -> MemoryOnlineType {
        config.memory.rule(forNode: node)?.onlineType ?? config.memory.onlineType
    }
}
