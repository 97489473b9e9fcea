import HotplugCore
import HotplugSystem

/// Memory decisions: waiting for a DIMM to be complete, grouping its blocks, accounting zones.
extension Engine {
    /// Decides the blocks that are ready. A block is not ready before it has its node (until then
    /// the kernel cannot say which zones it may go to, see `Sysfs.memoryBlock`) and, under
    /// `auto-movable`, its `firmware_node` link: the kernel binds that once all blocks of the DIMM
    /// exist, and a DIMM must be decided as a whole. A block still not ready `memoryGroupWait`
    /// after the last memory `add` is decided as it is (no ACPI memory device behind it, or a
    /// kernel without NUMA, whose blocks never get a node link).
    func memoryDecisions(for ids: Set<DeviceID>, now: ContinuousClock.Instant) -> [DeviceID: PolicyDecision] {
        var ready = Set<DeviceID>()
        lastMemoryCheck = now
        for id in ids {
            if records[id]?.block?.firmwareNode == nil || records[id]?.block?.validZones.isEmpty == true {
                readBlock(id)
            }
            guard let block = records[id]?.block else { continue }
            let waitsForDIMM = onlineType(forNode: block.node) == .autoMovable && block.firmwareNode == nil
            if block.validZones.isEmpty || waitsForDIMM {
                let since = records[id]!.waitingSince ?? now
                records[id]!.waitingSince = since
                if now < max(since, lastMemoryAdd ?? since) + options.memoryGroupWait { continue }
                if block.validZones.isEmpty { readBlock(id, zonesWithoutNode: true) }
            }
            records[id]!.waitingSince = nil
            ready.insert(id)
        }
        return memoryPolicyDecisions(for: ready)
    }

    private func readBlock(_ id: DeviceID, zonesWithoutNode: Bool = false) {
        guard let block = try? sysfs.memoryBlock(id, zonesWithoutNode: zonesWithoutNode) else { return }
        records[id, default: DeviceRecord()].block = block
        records[id]!.node = block.node
    }

    /// The policy's decision for each of `ids` and for the other offline blocks of their DIMMs.
    func memoryPolicyDecisions(for ids: Set<DeviceID>) -> [DeviceID: PolicyDecision] {
        guard !ids.isEmpty else { return [:] }
        var wanted = ids
        var firmwareNodes = Set<String>()
        for id in ids {
            if let firmwareNode = records[id]?.block?.firmwareNode, firmwareNodes.insert(firmwareNode).inserted {
                wanted.formUnion(completeDIMM(around: id, firmwareNode: firmwareNode))
            }
        }
        let blocks = records.compactMap { id, record -> MemoryBlock? in
            guard let block = record.block, record.state != .removed else { return nil }
            if wanted.contains(id) { return block }
            // Other blocks of the same DIMM, online or not, tell the policy its size and zone.
            return block.firmwareNode.map(firmwareNodes.contains) == true ? block : nil
        }
        let policy = MemoryPolicy(config: config.memory, blockSizeBytes: pagesPerBlock * 4096)
        return policy.decide(blocks, accounting: accounting()).filter { wanted.contains($0.key) }
    }

    /// Finds the blocks of a DIMM that sysfs has but no event announced yet. A DIMM's blocks are
    /// consecutive (one physical range), so the search walks out from a known block in both
    /// directions while the neighbour carries the same `firmware_node`.
    private func completeDIMM(around id: DeviceID, firmwareNode: String) -> Set<DeviceID> {
        var found = Set<DeviceID>()
        for step in [-1, 1] {
            var index = id.index + step
            while let neighbour = DeviceID(kind: .memory, index: index) {
                if let known = records[neighbour]?.block?.firmwareNode, known == firmwareNode {
                    if records[neighbour]!.state == .offline && records[neighbour]!.managed { found.insert(neighbour) }
                } else {
                    guard (try? sysfs.link(neighbour, "firmware_node")) == firmwareNode else { break }
                    records[neighbour, default: DeviceRecord()].managed = true
                    apply(.event(.add), to: neighbour, action: "add")
                    readBlock(neighbour)
                    if records[neighbour]?.block?.online == true {
                        apply(.observed(.online), to: neighbour, action: "add")
                    }
                    if records[neighbour]!.state == .offline { found.insert(neighbour) }
                }
                index += step
            }
        }
        return found
    }

    /// Movable memory now and kernel memory at boot, per node.
    func accounting() -> MemoryAccounting {
        var movable: [Int: Int] = [:]
        for record in records.values where record.state == .online {
            if let block = record.block, block.isMovable { movable[block.node ?? 0, default: 0] += pagesPerBlock }
        }
        return MemoryAccounting(earlyKernelPages: bootKernelPages, movablePages: movable)
    }

    func onlineType(forNode node: Int?) -> MemoryOnlineType {
        config.memory.rule(forNode: node)?.onlineType ?? config.memory.onlineType
    }
}
