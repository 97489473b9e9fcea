/// Memory decisions: waiting for a DIMM to be complete, grouping its blocks, accounting zones.
extension DecisionCore {
    /// Decides the blocks of `pass` that are ready, asking for reads first where a block lacks
    /// what its decision needs.
    ///
    /// Rules per node need the node: the kernel links it right after the `add` events, and every
    /// block of a NUMA kernel gets one, so a block waits for it, re-read every `memoryGroupPoll`,
    /// and is decided without it (and said so) only after `nodeWait`. Under `auto-movable`, when
    /// the kernel picks the zone (`MemoryOnlining.kernelPicksZones`) the block is written `online`
    /// at once. Otherwise hotplugd decides the zone itself and a block also needs its node (until
    /// then the kernel cannot say which zones it may go to, see `Sysfs.memoryBlock`) and its
    /// `firmware_node` link: the kernel binds that once all blocks of the DIMM exist, and a DIMM
    /// must be decided as a whole. Whether a link is still to come sysfs cannot say (memory of
    /// virtio-mem, dax/kmem or a balloon never gets one), so a block still without it
    /// `memoryGroupWait` after the last memory `add` is decided on its own, and said so. An
    /// explicit online type is written at once: the kernel holds the device hotplug lock until the
    /// whole DIMM is added, so the write waits for the block to be complete and starts the moment it is.
    ///
    /// In kernel mode none of that: the kernel decides inside the add (with its memory groups). A
    /// block added in this run and still offline is most likely one the kernel is still onlining:
    /// it is looked at again once memory events have been quiet for `kernelOnlineGrace`, and only
    /// then written, the kernel's own type, so that the kernel picks its zone as it would have.
    /// When to look is a matter of time, who onlined it is not: the write waits for any add in
    /// progress and tells (see `written`). Writing at once would have the write wait on the device
    /// hotplug lock during the add, which slows the add itself (a virtio-mem device adds and
    /// onlines one block after the other). Blocks found offline at start are written at once.
    mutating func decideMemory(_ pass: MemoryPass) {
        lastMemoryCheck = now
        if let value = memoryOnlining.kernelValue {
            for id in pass.blocks.sorted() {
                waiting[id] = nil
                guard let record = records[id], record.managed, record.machine.canRequestOnline else {
                    kernelPending[id] = nil
                    continue
                }
                if record.addedAt != nil && now < (lastMemoryActivity ?? now) + options.kernelOnlineGrace {
                    kernelPending[id] = now
                    continue
                }
                kernelPending[id] = nil
                online(id, .online(value))
            }
            return
        }
        var toRead: [DeviceID] = []
        var nodesToRead: [DeviceID] = []
        var zonesWithoutNode: [DeviceID] = []
        var ready = Set<DeviceID>()
        var withoutNode: [DeviceID] = []
        var withoutDIMM: [DeviceID] = []
        // The node is a fact to wait for where a decision depends on it: node rules, and
        // hotplugd's own auto-movable per node; only on a kernel whose blocks have nodes at all.
        let needsNode =
            blocksHaveNodes
            && (!config.memory.nodes.isEmpty
                || (config.memory.onlineType == .autoMovable && config.memory.autoMovableNUMAAware
                    && !memoryOnlining.kernelPicksZones))
        for id in pass.blocks.sorted() {
            guard let record = records[id], record.managed, record.machine.canRequestOnline else {
                waiting[id] = nil
                continue
            }
            let unread = !pass.read.contains(id)
            if record.node == nil && needsNode {
                if unread {
                    if decidedWithoutReading(id) { nodesToRead.append(id) } else { toRead.append(id) }
                    continue
                }
                let since = waiting[id] ?? now
                waiting[id] = since
                if now < since + options.nodeWait { continue }
                withoutNode.append(id)
            }
            guard onlineType(forNode: record.node) == .autoMovable, !memoryOnlining.kernelPicksZones else {
                waiting[id] = nil
                ready.insert(id)
                continue
            }
            // A dax device's memory is a device of its own: no DIMM link will come.
            let incomplete =
                (record.block?.firmwareNode == nil && !isDax(id)) || record.block?.validZones.isEmpty != false
            if incomplete && unread {
                toRead.append(id)
                continue
            }
            if incomplete {
                let since = waiting[id] ?? now
                waiting[id] = since
                if now < max(since, lastMemoryAdd ?? since) + options.memoryGroupWait { continue }
                // Given up waiting for the node link: the zones are read without it, once.
                if record.block?.validZones.isEmpty != false && !pass.zonesRead.contains(id) {
                    zonesWithoutNode.append(id)
                    continue
                }
                if record.block?.firmwareNode == nil && !isDax(id) { withoutDIMM.append(id) }
            }
            waiting[id] = nil
            ready.insert(id)
        }
        if !zonesWithoutNode.isEmpty {
            var next = pass
            next.zonesRead.formUnion(zonesWithoutNode)
            next.read.formUnion(zonesWithoutNode)
            effects.append(.read(ReadRequest(.devices(zonesWithoutNode, zonesWithoutNode: true), for: .decide(next))))
            return
        }
        if !toRead.isEmpty || !nodesToRead.isEmpty {
            let what: ReadRequest.What =
                toRead.isEmpty
                ? .nodes(nodesToRead, hint: nodeHint(before: nodesToRead[0]))
                : .devices(toRead + nodesToRead, zonesWithoutNode: false)
            effects.append(.read(ReadRequest(what, for: .decide(pass))))
            return
        }
        if !withoutNode.isEmpty {
            log(
                .notice, "decided without a NUMA node: the kernel gave the blocks no node link in time",
                ["devices": withoutNode.map(\.name).joined(separator: " "), "waited": "\(options.nodeWait)"])
        }
        if !withoutDIMM.isEmpty {
            log(
                .info, "decided as memory devices of their own: no DIMM (firmware_node) link",
                [
                    "devices": withoutDIMM.map(\.name).joined(separator: " "),
                    "waited": "\(options.memoryGroupWait) after the last memory add",
                ])
        }
        // A DIMM's other blocks tell the policy its size and zone; sysfs may have some that no
        // event announced yet.
        for id in ready.sorted() where onlineType(forNode: records[id]?.node) == .autoMovable {
            guard let firmwareNode = records[id]?.block?.firmwareNode, !pass.walked.contains(firmwareNode) else {
                continue
            }
            let (low, high) = knownExtent(of: firmwareNode, around: id)
            var next = pass
            next.walked.insert(firmwareNode)
            effects.append(
                .read(
                    ReadRequest(
                        .dimm(
                            firmwareNode: firmwareNode, below: DeviceID(kind: .memory, index: low - 1),
                            above: DeviceID(kind: .memory, index: high + 1)),
                        for: .decide(next))))
            return
        }
        // A DIMM is decided whole, so all its offline blocks must be complete: one still waiting
        // for its node or zones holds the others back (the policy would take its unread zones
        // for a block that may not be movable, and put the whole DIMM in a kernel zone), and one
        // this pass has not looked at yet joins it.
        var joining = Set<DeviceID>()
        var held: [DeviceID] = []
        for id in ready.sorted() where onlineType(forNode: records[id]?.node) == .autoMovable && !kernelPicksZone(id) {
            guard let firmwareNode = records[id]?.block?.firmwareNode else { continue }
            let incomplete = dimmBlocks(of: firmwareNode, around: id).filter { other in
                guard !ready.contains(other), let record = records[other] else { return false }
                return record.state == .offline && record.managed && record.machine.canRequestOnline
            }
            guard !incomplete.isEmpty else { continue }
            let unseen = incomplete.filter { !pass.blocks.contains($0) }
            if unseen.isEmpty { held.append(id) } else { joining.formUnion(unseen) }
        }
        if !joining.isEmpty {
            var next = pass
            next.blocks.formUnion(joining)
            decideMemory(next)
            return
        }
        for id in held {
            ready.remove(id)
            waiting[id] = waiting[id] ?? now
        }
        let (policyDecisions, kernelZoneReasons) = memoryPolicyDecisionsExplaining(
            for: ready.filter { !kernelPicksZone($0) })
        for (devices, reason) in kernelZoneReasons {
            log(
                .info, "auto-movable chose a kernel zone",
                ["devices": devices.sorted().map(\.name).joined(separator: " "), "reason": reason])
        }
        var decisions = policyDecisions
        for id in ready where kernelPicksZone(id) { decisions[id] = .online(.online) }
        for (id, decision) in decisions.sorted(by: { $0.key < $1.key }) {
            online(id, decision)
        }
    }

    /// The node of the block before `id`, which a DIMM's blocks share: the first node to try for it.
    func nodeHint(before id: DeviceID) -> Int? {
        DeviceID(kind: .memory, index: id.index - 1).flatMap { records[$0]?.node }
    }

    /// The lowest and highest block index of a DIMM's run of known blocks around `id`.
    func knownExtent(of firmwareNode: String, around id: DeviceID) -> (Int, Int) {
        var low = id.index
        var high = id.index
        while let below = DeviceID(kind: .memory, index: low - 1), let record = records[below], record.isPresent,
            record.block?.firmwareNode == firmwareNode
        {
            low -= 1
        }
        while let above = DeviceID(kind: .memory, index: high + 1), let record = records[above], record.isPresent,
            record.block?.firmwareNode == firmwareNode
        {
            high += 1
        }
        return (low, high)
    }

    /// The blocks of that run, `knownExtent`'s range as devices.
    func dimmBlocks(of firmwareNode: String, around id: DeviceID) -> [DeviceID] {
        let (low, high) = knownExtent(of: firmwareNode, around: id)
        return (low...high).compactMap { DeviceID(kind: .memory, index: $0) }
    }

    /// Blocks a DIMM walk found that no event announced yet: taken in as added, online or not.
    mutating func joinDIMM(_ readings: Readings) {
        for (id, reading) in readings.devices.sorted(by: { $0.key < $1.key }) {
            if let known = records[id], known.isPresent { continue }
            guard let block = reading.block, reading.state != .absent else { continue }
            update(id) {
                $0.managed = true
                $0.block = block
            }
            apply(.event(.add), to: id, cause: .event(.add))
            if reading.state == .online { apply(.observed(.online), to: id, cause: .event(.add)) }
        }
    }

    /// The policy's decision for each of `ids` and for the other offline, managed blocks of their
    /// DIMMs, from what the records hold. Costs the size of the DIMMs involved, not of the machine.
    func memoryPolicyDecisions(for ids: Set<DeviceID>) -> [DeviceID: PolicyDecision] {
        memoryPolicyDecisionsExplaining(for: ids).decisions
    }

    /// `memoryPolicyDecisions`, with auto-movable's reasons for kernel zones (`MemoryPolicy.decideExplaining`).
    func memoryPolicyDecisionsExplaining(
        for ids: Set<DeviceID>
    ) -> (decisions: [DeviceID: PolicyDecision], kernelZoneReasons: [([DeviceID], String)]) {
        guard !ids.isEmpty else { return ([:], []) }
        var wanted = ids
        var members = Set<DeviceID>()
        var firmwareNodes = Set<String>()
        // Only auto-movable decides a DIMM as a whole; other online types decide block by block.
        for id in ids where onlineType(forNode: records[id]?.node) == .autoMovable {
            guard let firmwareNode = records[id]?.block?.firmwareNode, firmwareNodes.insert(firmwareNode).inserted
            else {
                continue
            }
            for member in dimmBlocks(of: firmwareNode, around: id) {
                members.insert(member)
                if let record = records[member], record.state == .offline, record.managed { wanted.insert(member) }
            }
        }
        let blocks = wanted.union(members).compactMap { policyBlock($0) }
        let policy = MemoryPolicy(config: config.memory, blockSizeBytes: blockSizeBytes)
        let (decisions, reasons) = policy.decideExplaining(blocks, accounting: accounting())
        return (
            decisions.filter { wanted.contains($0.key) },
            reasons.map { ($0.0.filter(wanted.contains), $0.1) }.filter { !$0.0.isEmpty }
        )
    }

    /// A record's block as the policy sees it: online exactly when the machine says so.
    func policyBlock(_ id: DeviceID) -> MemoryBlock? {
        guard let record = records[id], record.state != .removed, var block = record.block else { return nil }
        block.online = record.state == .online
        return block
    }

    /// Movable memory now and kernel memory at boot, per node.
    func accounting() -> MemoryAccounting {
        MemoryAccounting(earlyKernelPages: bootKernelPages, movablePages: movablePages.filter { $0.value != 0 })
    }

    /// Whether the block is written `online` for the kernel to pick its auto-movable zone.
    func kernelPicksZone(_ id: DeviceID) -> Bool {
        memoryOnlining.kernelPicksZones && onlineType(forNode: records[id]?.node) == .autoMovable
    }

    func onlineType(forNode node: Int?) -> MemoryOnlineType {
        config.memory.rule(forNode: node)?.onlineType ?? config.memory.onlineType
    }

    /// Counts kernel-zone memory at boot from the first scan, unless an earlier start kept it.
    mutating func loadBaseline() {
        bootKernelPages =
            options.bootKernelPages
            ?? MemoryAccounting(blocks: records.keys.compactMap { policyBlock($0) }, pagesPerBlock: pagesPerBlock)
            .earlyKernelPages
    }
}
