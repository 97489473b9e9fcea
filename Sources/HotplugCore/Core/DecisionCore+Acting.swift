/// Events, coldplug and onlining: from a decoded burst to the writes it calls for.
extension DecisionCore {
    /// Applies a burst of decoded events, then acts once on the devices they touched (after the
    /// new ones have been read, unless `alreadyRead` has them: blocks the kernel added and onlined
    /// in the same burst were read before it, to log where they went).
    mutating func apply(_ events: [Uevent], alreadyRead: Set<DeviceID> = []) {
        var touched: [DeviceID] = []
        var added: [DeviceID] = []
        for event in events {
            let id = event.device
            if options.logsDebug {
                log(
                    .debug, "uevent", ["device": id.name, "action": event.action.rawValue, "seqnum": "\(event.seqnum)"])
            }
            switch event.action {
            case .offline where records[id]?.state == .online:
                // hotplugd never offlines: somebody else did, and that is their intent.
                takenOffline(id)
            case .online:
                if id.kind == .memory { lastMemoryActivity = now }
                forgetIntent(id, because: .event(.online))
                // Online again: whoever took it offline is done with it, and it is ours again.
                records[id, default: DeviceRecord()].managed = true
            case .add:
                forgetIntent(id, because: .event(.add))
                records[id, default: DeviceRecord()].managed = true
                records[id]?.takenByDriver = false
                if id.kind == .memory {
                    lastMemoryAdd = now
                    lastMemoryActivity = now
                }
            case .remove:
                forgetIntent(id, because: .event(.remove))
            default:
                break
            }
            let by: Onliner? = event.action == .online && kernelOnlines(id) ? .kernel : nil
            let transition = apply(
                .event(event.action), to: id, cause: .event(event.action), by: by, at: event.receivedAt)
            if transition?.input == .event(.add) {
                added.append(id)
            }
            touched.append(id)
        }
        sayTakenBackByDriver()
        let removedByDriver = events.filter { $0.action == .remove && records[$0.device]?.takenByDriver == true }
            .map(\.device)
        if !removedByDriver.isEmpty {
            log(
                .info, "memory removed by the driver that added it",
                [
                    "blocks": DeviceID.runs(removedByDriver),
                    "count": "\(Set(removedByDriver).count)",
                ], kind: .removed)
        }
        // New devices: read their attributes. Not for a late `add` of a device already taken in
        // (a DIMM's blocks are found before their events are read), nor for online/offline events,
        // whose action is the truth even when the attribute does not show it yet (the kernel sends
        // first), nor for blocks whose decision needs at most their node (`decideMemory` looks for
        // it): those are read after their write.
        let new = Set(added).subtracting(alreadyRead)
        let writtenFirst = new.filter(decidedWithoutReading)
        for id in writtenFirst.sorted() {
            update(id) { $0.block = .unread(id) }
        }
        let toRead = new.subtracting(writtenFirst).sorted()
        if !toRead.isEmpty {
            effects.append(.read(ReadRequest(.devices(toRead, zonesWithoutNode: false), for: .added(touched: touched))))
        } else if !writtenFirst.isEmpty && config.memory.dax == .leave {
            // Whether a block is a dax device's is known from the dax devices alone.
            effects.append(.read(ReadRequest(.daxRAM, for: .added(touched: touched))))
        } else {
            flushIntent()
            act(on: touched)
        }
    }

    /// Whether a memory block's decision needs nothing from sysfs but, with node rules, its node:
    /// in userspace mode, when every online type of the configuration is explicit or an
    /// auto-movable whose zone the kernel picks. Such a block is written at its `add` (once its
    /// node is linked, if a rule needs it) and read after the write. Reading it whole first (state,
    /// node, zones, DIMM link: some fifteen system calls) would put all of a DIMM's reads before
    /// its first write, and the write itself says whether the block is still there and offline.
    func decidedWithoutReading(_ id: DeviceID) -> Bool {
        guard id.kind == .memory, !memoryOnlining.isKernel else { return false }
        let types = [config.memory.onlineType] + config.memory.nodes.compactMap(\.onlineType)
        return !types.contains(.autoMovable) || memoryOnlining.kernelPicksZones
    }

    /// After the start-up scan: devices of a kind whose coldplug is off are left alone; the rest
    /// are acted on like hot-added ones.
    mutating func coldplug() {
        for kind in DeviceKind.allCases {
            let mode = kind == .cpu ? config.cpu.coldplug : config.memory.coldplug
            let allowed: Bool
            if let commandLine = options.kernelCommandLine {
                allowed = mode.allows(kind, kernelCommandLine: commandLine)
            } else {
                // Unknown command line: `auto` might be undoing `maxcpus=`, so it does not.
                allowed = mode == .always || (mode == .auto && kind == .memory)
            }
            if !allowed {
                log(
                    .notice, "coldplug of \(kind) devices is off: offline ones found at start are left alone",
                    [
                        "coldplug": mode.rawValue,
                        "reason": options.kernelCommandLine == nil
                            ? "the kernel command line could not be read" : "configuration",
                    ])
                for (id, record) in records where id.kind == kind && record.state == .offline {
                    records[id]?.managed = false
                }
            }
        }
        act(on: Array(records.keys))
    }

    /// Onlines whatever among `ids` is offline, managed and wanted by the policy.
    mutating func act(on ids: [DeviceID]) {
        var cpus: [DeviceID] = []
        var blocks = Set<DeviceID>()
        var heldForIntent: [DeviceID] = []
        for id in Set(ids).sorted() {
            guard let record = records[id], record.managed, record.machine.canRequestOnline else { continue }
            if !mayOnline(id) {
                heldForIntent.append(id)
            } else if id.kind == .cpu {
                cpus.append(id)
            } else if config.memory.dax == .leave && isDax(id) {
                online(id, .leave(reason: "dax/kmem memory, which daxctl onlines (memory.dax = \"leave\")"))
            } else {
                blocks.insert(id)
            }
        }
        if !heldForIntent.isEmpty {
            log(
                .notice, "left offline while the intent file cannot be read whole",
                ["devices": heldForIntent.map(\.name).joined(separator: " ")], kind: .intent)
        }
        let cpuPolicy = CPUPolicy(config: config.cpu)
        for id in cpus.sorted() {
            online(id, cpuPolicy.decide(cpu: id.index))
        }
        if !blocks.isEmpty { decideMemory(MemoryPass(blocks: blocks)) }
    }

    /// Whether the block is a dax device's memory (`daxctl reconfigure-device --mode=system-ram`):
    /// its range lies in a dax device's, as libdaxctl tells a device's blocks.
    func isDax(_ id: DeviceID) -> Bool {
        guard id.kind == .memory else { return false }
        let start = id.index * blockSizeBytes
        return daxRAM.contains { $0.contains(start) }
    }

    /// Failed devices whose time has come are tried again, each said with when the next try is.
    mutating func retryFailed() {
        let due = retries.filter { $0.value.at <= now }.keys.sorted()
        for id in due {
            guard let record = records[id], record.state == .failed, record.managed else {
                retries[id] = nil
                continue
            }
            records[id]?.machine = DeviceMachine(state: .offline)
            log(
                .info, "trying again to online a device that failed",
                ["device": id.name, "next_wait": "\(retries[id]!.next)"])
        }
        if !due.isEmpty { act(on: due) }
    }

    /// Carries out one decision: the write, or the reason the device stays offline.
    mutating func online(_ id: DeviceID, _ decision: PolicyDecision) {
        guard let value = decision.onlineValue else {
            log(.info, "left offline", ["device": id.name, "reason": "\(decision)"])
            records[id]?.managed = false
            readIfTakenUnread(id)
            return
        }
        if options.dryRun {
            log(.notice, "would online (dry run)", ["device": id.name, "value": value.rawValue])
            records[id]?.managed = false
            readIfTakenUnread(id)
            return
        }
        apply(.onlineRequested, to: id, cause: .write, value: value)
        writesInFlight += 1
        effects.append(.write(id, value))
    }

    /// A block taken in at its `add` without a reading (`decidedWithoutReading`) and not written
    /// after all is read now, so that `status` shows its node and zones; no write will say them.
    mutating func readIfTakenUnread(_ id: DeviceID) {
        guard id.kind == .memory, let block = records[id]?.block, block.validZones.isEmpty else { return }
        effects.append(.read(ReadRequest(.devices([id], zonesWithoutNode: false), for: .added(touched: []))))
    }

    /// Records the node and zone a device went to once online.
    mutating func noteOnlined(_ id: DeviceID, _ reading: DeviceReading) {
        guard records[id]?.state == .onlining else { return }
        if id.kind == .cpu {
            if let node = reading.node { records[id]?.cpuNode = node }
            return
        }
        guard var block = records[id]?.block else { return }
        if let node = reading.node { block.node = node }
        if let zones = reading.block?.validZones, !zones.isEmpty { block.validZones = zones }
        if let firmwareNode = reading.block?.firmwareNode { block.firmwareNode = firmwareNode }
        setBlock(id, block)
    }

    /// The first block after `id`, when the blocks after it may have been hot-added with it and
    /// their `add` uevents are not read yet.
    ///
    /// Once a block whose decision is its own (an explicit online type, or the kernel's
    /// auto-movable zone) is online, the kernel has finished adding its whole DIMM (the write
    /// waited for the device hotplug lock the add holds), so the following blocks are in sysfs; a
    /// virtio-mem device adds blocks ahead of their onlining. Taking the run of them in now
    /// writes them in one row of writes, which the owner performs back to back, instead of one
    /// wake-up per block; their uevents, read later, change nothing.
    func followingBlock(after id: DeviceID, value: OnlineValue) -> DeviceID? {
        // In kernel mode the kernel onlines the rest of the DIMM itself; hotplugd's own
        // auto-movable decides a DIMM as a whole, from its `add` events.
        guard id.kind == .memory, value != .cpu, !memoryOnlining.isKernel,
            onlineType(forNode: records[id]?.node) != .autoMovable || memoryOnlining.kernelPicksZones,
            let next = DeviceID(kind: .memory, index: id.index + 1)
        else { return nil }
        if let known = records[next], known.isPresent { return nil }
        return next
    }

    /// How many following blocks one read looks at (`ReadRequest.What.offlineRun`): 128 GiB of
    /// 128 MiB blocks. A larger DIMM is taken in a run at a time.
    static let followingRun = 1024

    /// The following blocks are offline: added with the one before, they are taken in as added.
    /// Nothing more is read before the writes (but their nodes, for a node rule): their decision
    /// needs no zones, and the node is read once each block is online.
    mutating func takeInFollowing(_ ids: [DeviceID]) {
        guard !ids.isEmpty else { return }
        for id in ids {
            update(id) {
                $0.managed = true
                $0.block = .unread(id)
            }
            apply(.event(.add), to: id, cause: .event(.add))
        }
        act(on: ids)
    }
}
