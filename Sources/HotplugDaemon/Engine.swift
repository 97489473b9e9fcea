import HotplugCore
import HotplugSystem
import Logging

/// The daemon's core: applies events and sysfs readings to the per-device state machines and
/// onlines what the policy says.
///
/// Not thread-safe by design: one task owns it and feeds it whole bursts of events, so each
/// burst is decided once (memory in ascending block order, DIMMs as a whole) instead of one
/// write per wake-up.
public final class Engine {
    public struct Options: Sendable {
        /// Log decisions, write nothing.
        public var dryRun = false
        /// `/proc/cmdline`, for the `maxcpus=` rule of CPU coldplug.
        public var kernelCommandLine = ""
        /// How long a hot-added memory block waits for its `firmware_node` link (which the kernel
        /// binds after adding all blocks of a DIMM) before it is decided on its own. Counted from
        /// the last memory `add` seen, so a long burst keeps its blocks together.
        public var memoryGroupWait: Duration = .milliseconds(250)
        /// How often waiting blocks are looked at again: the links appear without a uevent.
        public var memoryGroupPoll: Duration = .milliseconds(5)
        /// Kernel-zone memory present at boot per node, in pages, when known from an earlier start.
        public var bootKernelPages: [Int: Int]?
        public var retry = Actuator.Retry()
        public init() {}
    }

    public private(set) var config: Config
    let options: Options
    let sysfs: any SysfsAccess
    let actuator: Actuator
    let log: TransitionLog
    let intentStore: IntentStore?
    /// Devices somebody wants offline, as last read or changed (see `Engine+Intent`).
    public internal(set) var intent = OperatorIntent()
    /// Intent changes not yet written to the store.
    var pendingIntent: [DeviceID: OperatorIntent.Entry?] = [:]
    /// Device changes since the last `takeChanges()`, for hooks and metrics.
    private var changes: [DeviceChange] = []
    /// Online writes since the last `takeOperations()`, for metrics.
    private var operations: [OnlineOperation] = []
    var records: [DeviceID: DeviceRecord] = [:]
    var pagesPerBlock = 32768
    /// The memory block size, from `block_size_bytes` once scanned.
    public var blockSizeBytes: Int { pagesPerBlock * 4096 }
    /// Kernel-zone memory present at boot per node, in pages: the auto-movable ratio's base.
    public private(set) var bootKernelPages: [Int: Int] = [:]
    /// Memory blocks waiting for their node or DIMM link, since when (see `Engine+Memory`).
    var waiting: [DeviceID: ContinuousClock.Instant] = [:]
    /// Online movable memory per node, in pages, kept up to date by `update(_:_:)` so that a
    /// decision never walks every block.
    var movablePages: [Int: Int] = [:]
    var lastMemoryAdd: ContinuousClock.Instant?
    /// When waiting memory blocks were last looked at.
    var lastMemoryCheck: ContinuousClock.Instant?
    /// Refused input is logged, but not without bound.
    private var rejections = LogRateLimit()

    public init(
        config: Config, sysfs: any SysfsAccess, options: Options = Options(), intentStore: IntentStore? = nil,
        logger: Logger
    ) {
        self.config = config
        self.options = options
        self.sysfs = sysfs
        self.intentStore = intentStore
        self.actuator = Actuator(sysfs: sysfs, retry: options.retry)
        self.log = TransitionLog(logger: logger)
    }

    // MARK: - Start and reconcile

    /// Reads every CPU and memory block, then onlines what coldplug and the policy allow.
    public func start() throws(SysfsError) {
        try scanOnly()
        for kind in DeviceKind.allCases {
            let mode = kind == .cpu ? config.cpu.coldplug : config.memory.coldplug
            if !mode.allows(kind, kernelCommandLine: options.kernelCommandLine) {
                log.logger.notice(
                    "coldplug of \(kind) devices is off: offline ones found at start are left alone",
                    metadata: ["coldplug": "\(mode.rawValue)"])
                for id in records.keys where id.kind == kind && records[id]!.state == .offline {
                    records[id]!.managed = false
                }
            }
        }
        act(on: Array(records.keys))
    }

    /// Reads every device and the boot baseline, and acts on nothing (for `hotplugd status`).
    public func scanOnly() throws(SysfsError) {
        if let size = try? sysfs.memoryBlockSize() { pagesPerBlock = max(1, size / 4096) }
        try scan(reason: "scan")
        loadIntent()
        bootKernelPages =
            options.bootKernelPages
            ?? MemoryAccounting(blocks: records.values.compactMap(\.block), pagesPerBlock: pagesPerBlock)
            .earlyKernelPages
    }

    /// Rescans sysfs after events were lost (ENOBUFS) and onlines whatever the policy wants online.
    public func reconcile(reason: String) {
        log.logger.warning("rescanning sysfs", metadata: ["reason": "\(reason)"])
        reloadIntent()
        do {
            try scan(reason: "rescan")
        } catch {
            log.logger.error("rescan failed", metadata: ["error": "\(error)"])
        }
        // A failed device gets one more chance after a rescan; blocked ones never do.
        for (id, record) in records where record.state == .failed {
            records[id]!.machine = DeviceMachine(state: .offline)
            log.logger.info("retrying after rescan", metadata: ["device": "\(id)"])
        }
        act(on: Array(records.keys))
    }

    /// Replaces the configuration; devices are not re-decided until something happens to them,
    /// except those others took offline when `enforce` was just turned on.
    public func update(config: Config) {
        let newlyEnforced = DeviceKind.allCases.contains { config.enforces($0) && !self.config.enforces($0) }
        self.config = config
        if newlyEnforced { applyEnforce() }
    }

    private func scan(reason: String) throws(SysfsError) {
        var present = Set<DeviceID>()
        // Read before the devices, so a device linked in between is one the map lacks, and a
        // missing node only delays reading `valid_zones` (see `memoryBlockAndState`).
        let nodes = (try? sysfs.nodeMembership()).flatMap { $0.isEmpty ? nil : $0 }
        for kind in DeviceKind.allCases {
            for id in try sysfs.devices(kind).sorted() {
                present.insert(id)
                refresh(id, action: reason, nodes: nodes)
            }
        }
        for id in records.keys where !present.contains(id) && records[id]!.state != .removed {
            apply(.observed(.absent), to: id, action: reason)
        }
    }

    /// Reads one device from sysfs and applies what it shows; `nodes` is the node membership
    /// read once for a whole scan.
    private func refresh(_ id: DeviceID, action: String, nodes: [DeviceID: Int]? = nil) {
        let wasOnline = records[id]?.state == .online
        let observed: ObservedState
        do {
            if id.kind == .memory {
                let block: MemoryBlock
                (block, observed) = try sysfs.memoryBlockAndState(id, nodes: nodes)
                setBlock(id, block)
            } else {
                observed = try sysfs.observe(id)
                if records[id]?.node == nil, observed != .absent {
                    records[id, default: DeviceRecord()].node = if let nodes { nodes[id] } else { try? sysfs.node(of: id) }
                }
            }
        } catch where error.errno == .noSuchFileOrDirectory {
            if records[id] != nil { apply(.observed(.absent), to: id, action: action) }
            return
        } catch {
            log.logger.error("cannot read device", metadata: ["device": "\(id)", "error": "\(error)"])
            return
        }
        apply(.observed(observed), to: id, action: action)
        // Online when last seen, offline now, and the event lost: hotplugd never offlines, so
        // somebody else did, as if their `offline` event had arrived.
        if action == "rescan", wasOnline, observed == .offline { takenOffline(id) }
    }

    // MARK: - Events

    /// Logs a uevent refused before decoding (a forged or malformed datagram), rate-limited.
    public func refused(_ reason: String, now: ContinuousClock.Instant = .now) {
        reject("refused uevent datagram", metadata: ["reason": "\(reason)"], now: now)
    }

    private func reject(_ message: Logger.Message, metadata: Logger.Metadata, now: ContinuousClock.Instant) {
        guard let suppressed = rejections.admit(now: now) else { return }
        var metadata = metadata
        if suppressed > 0 { metadata["suppressed"] = "\(suppressed)" }
        log.logger.warning(message, metadata: metadata)
    }

    /// Applies a burst of raw events, then acts once on the devices they touched. Returns how
    /// many of them were rejected.
    @discardableResult
    public func handle(_ batch: [RawUevent], now: ContinuousClock.Instant = .now) -> Int {
        var touched: [DeviceID] = []
        var added = Set<DeviceID>()
        var intentRead = false
        var rejected = 0
        for raw in batch {
            let event: Uevent
            do {
                event = try UeventDecoder.decode(raw)
            } catch {
                rejected += 1
                reject("rejected uevent", metadata: ["reason": "\(error)", "devpath": "\(raw.devpath ?? "-")"], now: now)
                continue
            }
            log.logger.debug(
                "uevent", metadata: ["device": "\(event.device)", "action": "\(event.action.rawValue)",
                                     "seqnum": "\(event.seqnum)"])
            let id = event.device
            if records[id] == nil && event.action != .add && event.action != .remove {
                // An event about a device never seen: read what it is first.
                refresh(id, action: "discover")
            }
            if event.action == .offline, records[id]?.state == .online {
                // hotplugd never offlines: somebody else did, and that is their intent.
                if !intentRead {
                    reloadIntent()
                    intentRead = true
                }
                takenOffline(id)
            }
            if event.action == .online || event.action == .add || event.action == .remove {
                forgetIntent(id, reason: "\(event.action.rawValue) event")
            }
            if event.action == .online {
                // Online again: whoever took it offline is done with it, and it is ours again.
                records[id, default: DeviceRecord()].managed = true
            }
            if event.action == .add {
                records[id, default: DeviceRecord()].managed = true
                if id.kind == .memory { lastMemoryAdd = now }
            }
            if apply(.event(event.action), to: id, action: event.action.rawValue)?.input == .event(.add) {
                added.insert(id)
            }
            touched.append(id)
        }
        // New devices: read their attributes. Not for a late `add` of a device already taken in
        // (a DIMM's blocks are found before their events are read), nor for online/offline events,
        // whose action is the truth even when the attribute does not show it yet (the kernel sends first).
        for id in added.sorted() {
            refresh(id, action: "add")
        }
        saveIntent()
        act(on: touched, now: now)
        return rejected
    }

    /// Called when `nextDeadline` has passed: looks again at memory blocks waiting for their node or
    /// DIMM link, and decides those that are ready or have waited long enough.
    public func tick(now: ContinuousClock.Instant = .now) {
        act(on: Array(waiting.keys), now: now)
    }

    /// When `tick` should next run, if anything is waiting.
    public var nextDeadline: ContinuousClock.Instant? {
        guard let earliest = waiting.values.min() else { return nil }
        let giveUp = max(earliest, lastMemoryAdd ?? earliest) + options.memoryGroupWait
        return min(giveUp, (lastMemoryCheck ?? earliest) + options.memoryGroupPoll)
    }

    // MARK: - Acting

    /// Onlines whatever among `ids` is offline, managed and wanted by the policy.
    func act(on ids: [DeviceID], now: ContinuousClock.Instant = .now) {
        let candidates = Set(ids).filter { id in
            guard let record = records[id] else { return false }
            return record.managed && record.machine.canRequestOnline
        }
        let cpus = candidates.filter { $0.kind == .cpu }.sorted()
        let cpuPolicy = CPUPolicy(config: config.cpu)
        for id in cpus {
            // The kernel links a new CPU to its node just after the add uevent: read it now if missed.
            if records[id]!.node == nil { records[id]!.node = try? sysfs.node(of: id) }
            online(id, cpuPolicy.decide(cpu: id.index))
        }
        var blocks = candidates.filter { $0.kind == .memory }
        while !blocks.isEmpty {
            let decisions = memoryDecisions(for: blocks, now: now)
            blocks = []
            for (id, decision) in decisions.sorted(by: { $0.key < $1.key }) {
                online(id, decision)
                if let next = nextAddedBlock(after: id), decisions[next] == nil { blocks.insert(next) }
            }
        }
    }

    /// The block after `id` when it was hot-added with it and its `add` uevent is not read yet.
    ///
    /// Once a block with an explicit online type is online, the kernel has finished adding its
    /// whole DIMM (the write waited for the device hotplug lock the add holds), so the following
    /// blocks are in sysfs. Taking them in now writes a DIMM in one run of writes instead of one
    /// wake-up per block; their uevents, read later, change nothing.
    private func nextAddedBlock(after id: DeviceID) -> DeviceID? {
        guard id.kind == .memory, records[id]?.state == .online, !options.dryRun,
            onlineType(forNode: records[id]?.node) != .autoMovable,
            let next = DeviceID(kind: .memory, index: id.index + 1)
        else { return nil }
        if let known = records[next], known.state != .absent && known.state != .removed { return nil }
        guard (try? sysfs.observe(next)) == .offline else { return nil }
        // Nothing more is read before the write: an explicit online type needs no zones, and the
        // node is read once the block is online (`noteOnlineZone`).
        update(next) {
            $0.managed = true
            $0.block = MemoryBlock(id: next, node: nil, validZones: [], firmwareNode: nil, online: false)
        }
        apply(.event(.add), to: next, action: "add")
        return next
    }

    private func online(_ id: DeviceID, _ decision: PolicyDecision) {
        guard let value = decision.onlineValue else {
            log.logger.info("left offline", metadata: ["device": "\(id)", "reason": "\(decision)"])
            records[id]!.managed = false
            return
        }
        if options.dryRun {
            log.logger.notice("would online (dry run)", metadata: ["device": "\(id)", "value": "\(value)"])
            records[id]!.managed = false
            return
        }
        apply(.onlineRequested, to: id, action: "online", value: value)
        let result = actuator.online(id, value: value)
        if result.outcome == .succeeded, id.kind == .memory { noteOnlineZone(id, value: value) }
        operations.append(
            OnlineOperation(
                device: id, outcome: result.outcome, sinceAdded: records[id]!.addedAt.map { ContinuousClock.now - $0 }))
        records[id]!.addedAt = nil
        apply(.onlineFinished(result.outcome), to: id, action: "online", value: value, attempts: result.attempts)
    }

    /// Records the zone an onlined block went to, for accounting and the log.
    private func noteOnlineZone(_ id: DeviceID, value: String) {
        guard var block = records[id]?.block else { return }
        block.online = true
        // Written before the node link appeared: the write waited for the add, so it is there now.
        // A DIMM's blocks share a node: try the previous block's first, one lookup instead of a listing.
        if block.node == nil {
            if let guess = records[DeviceID(kind: .memory, index: id.index - 1) ?? id]?.node, sysfs.has(id, "node\(guess)") {
                block.node = guess
            } else {
                block.node = try? sysfs.node(of: id)
            }
        }
        if value == MemoryOnlineType.onlineMovable.rawValue {
            block.validZones = ["Movable"]
        } else if let zones = try? sysfs.read(id, "valid_zones") {
            block.validZones = zones.split(separator: " ").map(String.init)
        }
        setBlock(id, block)
    }

    /// Stores a fresh reading of a block (and its node).
    func setBlock(_ id: DeviceID, _ block: MemoryBlock) {
        update(id) {
            $0.block = block
            $0.node = block.node
        }
    }

    /// Changes a record, keeping `movablePages` in step with it.
    func update(_ id: DeviceID, _ change: (inout DeviceRecord) -> Void) {
        let before = Self.movableNode(records[id])
        change(&records[id, default: DeviceRecord()])
        let after = Self.movableNode(records[id])
        if let before { movablePages[before, default: 0] -= pagesPerBlock }
        if let after { movablePages[after, default: 0] += pagesPerBlock }
    }

    /// The node whose movable memory a record counts in, if it is an online movable block.
    private static func movableNode(_ record: DeviceRecord?) -> Int? {
        guard let record, record.state == .online, let block = record.block, block.isMovable else { return nil }
        return block.node ?? 0
    }

    @discardableResult
    func apply(
        _ input: DeviceInput, to id: DeviceID, action: String, value: String? = nil, attempts: Int? = nil
    ) -> Transition? {
        var applied: Transition?
        update(id) { record in
            applied = record.machine.apply(input)
            guard let transition = applied else { return }
            if transition.to == .online, record.block?.online == false {
                record.block!.online = true
            } else if transition.to != .online && transition.to != .onlining, record.block?.online == true {
                record.block!.online = false
            }
        }
        guard let transition = applied else { return nil }
        if transition.to == .removed {
            // Whatever comes back under this name is a new device: the daemon's, with no intent.
            waiting[id] = nil
            records[id]!.managed = true
            forgetIntent(id, reason: "removed")
        }
        // Also for blocks of a DIMM found before their own `add` uevent was read.
        if transition.input == .event(.add) { records[id]!.addedAt = .now }
        if let event = HookEvent(transition) {
            changes.append(DeviceChange(device: id, event: event, zone: records[id]!.block?.zone, node: records[id]!.node))
        }
        log.transition(id, transition, action: action, record: records[id]!, value: value, attempts: attempts)
        return transition
    }

    /// The device changes since the last call: additions, onlines, offlines, removals, refusals.
    public func takeChanges() -> [DeviceChange] {
        defer { changes = [] }
        return changes
    }

    /// The online writes since the last call.
    public func takeOperations() -> [OnlineOperation] {
        defer { operations = [] }
        return operations
    }

    // MARK: - Status

    /// Every present device with its state and what the policy would do if it is offline.
    public func status() -> [DeviceStatus] {
        let offlineBlocks = Set(records.keys.filter { $0.kind == .memory && records[$0]!.state == .offline })
        let memory = memoryPolicyDecisions(for: offlineBlocks)
        let cpuPolicy = CPUPolicy(config: config.cpu)
        return records.keys.sorted().compactMap { id -> DeviceStatus? in
            let record = records[id]!
            guard record.state != .removed && record.state != .absent else { return nil }
            var policy: String?
            let kept = intent[id].flatMap { honours($0, of: id) ? $0 : nil }
            if let kept, record.state == .offline {
                policy = PolicyDecision.leave(reason: kept.description).description
            } else if record.state == .offline {
                policy = (id.kind == .cpu ? cpuPolicy.decide(cpu: id.index) : memory[id])?.description
            }
            return DeviceStatus(
                device: id.name, kind: id.kind, index: id.index, state: record.state, zone: record.block?.zone,
                node: record.node, dimm: record.block?.firmwareNode.map(Self.dimmName), policy: policy,
                intent: kept)
        }
    }

    /// The values an operator's `hotplugd online` writes: what the policy would choose, as if
    /// auto-online were on for every device (the operator asked for them).
    public func onlineValues(for devices: [DeviceID]) -> [DeviceID: String] {
        let saved = config
        defer { config = saved }
        config.cpu = Config.CPU()
        config.memory.autoOnline = true
        config.memory.nodes = config.memory.nodes.map { Config.NodeRule(node: $0.node, onlineType: $0.onlineType) }
        var values: [DeviceID: String] = [:]
        for id in devices where id.kind == .cpu { values[id] = "1" }
        let blocks = Set(devices.filter { $0.kind == .memory })
        for (id, decision) in memoryPolicyDecisions(for: blocks) where blocks.contains(id) {
            values[id] = decision.onlineValue ?? MemoryOnlineType.online.rawValue
        }
        return values
    }

    /// The state of every present device.
    public func presentDevices() -> [DeviceID: DeviceState] {
        records.compactMapValues { $0.state == .removed || $0.state == .absent ? nil : $0.state }
    }

    /// Present devices per kind and state.
    public func deviceCounts() -> [DeviceKind: [DeviceState: Int]] {
        var counts: [DeviceKind: [DeviceState: Int]] = [:]
        for (id, record) in records where record.state != .removed && record.state != .absent {
            counts[id.kind, default: [:]][record.state, default: 0] += 1
        }
        return counts
    }

    /// Online memory blocks per zone and node (`unknown` where not read).
    public func onlineBlocksByZone() -> [ZoneAndNode: Int] {
        var counts: [ZoneAndNode: Int] = [:]
        for record in records.values where record.state == .online {
            guard let block = record.block else { continue }
            counts[ZoneAndNode(zone: block.zone ?? "unknown", node: record.node.map(String.init) ?? "unknown"), default: 0] += 1
        }
        return counts
    }

    /// One line for systemd's STATUS=: devices per kind and state, and movable memory.
    public func summary() -> String {
        let counts = deviceCounts()
        let movable = onlineBlocksByZone().filter { $0.key.zone == "Movable" }.values.reduce(0, +)
        return DeviceKind.allCases.map { kind in
            let states = DeviceState.allCases.compactMap { state in
                counts[kind]?[state].map { "\($0) \(state.rawValue)" }
            }
            let extra = kind == .memory && movable > 0 ? " (\(movable) movable)" : ""
            return "\(kind.rawValue): \(states.isEmpty ? "none" : states.joined(separator: ", "))\(extra)"
        }.joined(separator: "; ")
    }

    public struct ZoneAndNode: Hashable, Sendable {
        public var zone: String
        public var node: String
    }

    /// The ACPI device name at the end of a firmware_node link (e.g. `PNP0C80:00`).
    static func dimmName(_ link: String) -> String {
        String(link.split(separator: "/").last ?? Substring(link))
    }
}
