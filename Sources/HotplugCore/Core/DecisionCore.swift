/// The daemon's decisions as a value: events, readings, write results and the clock go in;
/// effects (reads, writes, intent to store, log lines, device changes) come out.
///
/// It does no I/O and has no clock of its own, and wherever it walks a dictionary to make effects
/// it walks it in device order (Swift seeds hashing per process), so a recorded trace of inputs
/// replays to the same effects in any process, and the daemon, `hotplugd status` and the offline/online commands share one set of
/// decisions. Each input method returns the effects of that input; the owner performs them in
/// order and hands back each read's and write's result before anything else (see `Effect`).
///
/// Memory is decided per burst (ascending block order, a DIMM as a whole); see
/// `DecisionCore+Memory`. Operator intent is in `DecisionCore+Intent`, read-only answers for
/// status and the commands in `DecisionCore+Queries`.
public struct DecisionCore: Sendable {
    public typealias Instant = ContinuousClock.Instant

    public struct Options: Sendable {
        /// Decide and log, write nothing, store no intent.
        public var dryRun = false
        /// `/proc/cmdline`, for the `maxcpus=` rule of CPU coldplug; nil when it could not be read,
        /// which keeps CPU coldplug under `auto` off (a boot parameter must not be undone by guess).
        public var kernelCommandLine: String? = ""
        /// How long a hot-added memory block waits for its `firmware_node` link (which the kernel
        /// binds after adding all blocks of a DIMM) before it is decided on its own. Counted from
        /// the last memory `add` seen, so a long burst keeps its blocks together.
        public var memoryGroupWait: Duration = .milliseconds(250)
        /// How often waiting blocks are looked at again: the links appear without a uevent.
        public var memoryGroupPoll: Duration = .milliseconds(5)
        /// A device whose online write failed is tried again after `firstRetry`, then after
        /// twice as long each time, at most every `lastRetry`, until it is online, removed or
        /// taken offline by somebody: memory pressure (ENOMEM) passes, and hot-added memory
        /// must not stay offline because it came at a bad moment.
        public var firstRetry: Duration = .seconds(1)
        public var lastRetry: Duration = .seconds(300)
        /// In kernel mode, how long memory events must have been quiet before a block added
        /// offline is taken for one the kernel left offline and written (see `decideMemory`).
        public var kernelOnlineGrace: Duration = .seconds(1)
        /// How long a block waits for its node link when a node rule needs it. The kernel links
        /// every block of a NUMA kernel right after its add: this bounds a wait for a fact, it
        /// is not a decision by the clock.
        public var nodeWait: Duration = .seconds(2)
        /// Kernel-zone memory present at boot per node, in pages, when known from an earlier start.
        public var bootKernelPages: [Int: Int]?
        /// Whether debug lines are wanted; a scan's first sight of every device is one, and not
        /// building them keeps a scan of 100,000 blocks cheap.
        public var logsDebug = true
        public init() {}
    }

    public internal(set) var config: Config
    public let options: Options
    /// Who onlines new memory blocks. The owner sets it before `start` and after each
    /// `reconfigure`, once the kernel's settings are in place (see `MemoryOnlining`); in kernel
    /// mode the core onlines only what the kernel left offline, with the kernel's own type.
    public var memoryOnlining = MemoryOnlining.userspace(reason: "the kernel's onlining settings were not set")
    public internal(set) var records: [DeviceID: DeviceRecord] = [:]
    public internal(set) var pagesPerBlock = 32768
    /// Kernel-zone memory present at boot per node, in pages: the auto-movable ratio's base.
    public internal(set) var bootKernelPages: [Int: Int] = [:]
    /// Devices somebody wants offline, as last read or changed.
    public internal(set) var intent = OperatorIntent()
    /// Whether the intent file last read whole (see `takeIntent`).
    public internal(set) var intentTrusted = true
    /// Intent changes not yet handed out to be stored.
    var pendingIntent: [DeviceID: OperatorIntent.Entry?] = [:]
    /// Memory blocks waiting for their node or DIMM link, since when.
    var waiting: [DeviceID: Instant] = [:]
    /// Whether any block was read with a NUMA node: a kernel built with NUMA links every block
    /// to one, so a block without one yet is waiting for it.
    var blocksHaveNodes = false
    /// Failed devices: when each is tried again, and the wait before the try after that.
    var retries: [DeviceID: (at: Instant, next: Duration)] = [:]
    /// Online movable memory per node, in pages, kept in step with `records` by `update(_:_:)`,
    /// so that a decision never walks every block.
    var movablePages: [Int: Int] = [:]
    var lastMemoryAdd: Instant?
    /// The last memory `add` or `online` event: in kernel mode, the kernel is at work until these
    /// have been quiet for a while.
    var lastMemoryActivity: Instant?
    /// In kernel mode: blocks added offline, waiting for the kernel's `online` (see `decideMemory`).
    var kernelPending: [DeviceID: Instant] = [:]
    /// When waiting memory blocks were last looked at.
    var lastMemoryCheck: Instant?
    /// The firmware's "System RAM" ranges, as last read (see `classify`), and whether they were
    /// read at all (nil after a read: this kernel has no memory map).
    var firmwareRAM: [ClosedRange<Int>]?
    var firmwareRAMRead = false
    /// Memory blocks that came online in the input being handled, not yet classified.
    var unclassified: [DeviceID] = []
    /// Writes asked for and not finished yet (answered, and where the block went read): the driver
    /// performs a row of them back to back and then answers them one by one (`classifyOnlined`
    /// waits for the last).
    var writesInFlight = 0
    /// The dax devices' ranges, as last read (see `isDax`).
    var daxRAM: [ClosedRange<Int>] = []
    /// The devices of the last hot-add, for `hotplugd status` (see `HotAddSpan`).
    var lastHotAddSpan: HotAddSpan?
    /// Memory blocks a driver took back in the input being handled: said in one line.
    var takenBackByDriver: [DeviceID] = []
    /// Events refused by the decoder so far, for the metrics.
    public internal(set) var rejectedEvents = 0
    /// Refused input is logged, but not without bound.
    var rejections = LogRateLimit()
    /// So are reads other than devices' that fail again at every read (`Readings.otherFailures`).
    var readWarnings = LogRateLimit(burst: 5, interval: .seconds(3600))
    /// The effects of the input being handled, and its time.
    var effects: [Effect] = []
    public internal(set) var now: Instant
    /// Seconds since the epoch, set by the owner before each input: the time stamp of new intent
    /// entries (the monotonic `now` means nothing across reboots).
    public var wallClockSeconds = 0

    public init(config: Config, options: Options = Options(), now: Instant) {
        self.config = config
        self.options = options
        self.now = now
    }

    /// The memory block size, from `block_size_bytes` once scanned.
    public var blockSizeBytes: Int { pagesPerBlock * 4096 }

    // MARK: - Inputs

    /// The start-up scan. With `act`, coldplug follows: offline devices are onlined as the
    /// policy says. Without, the core only learns the machine (for `status` and the commands).
    public mutating func start(act: Bool, now: Instant) -> [Effect] {
        begin(now)
        effects.append(.loadIntent)
        effects.append(.read(ReadRequest(.everything, for: .start(act: act))))
        return finish()
    }

    /// The kernel dropped events (or the daemon's queue overflowed): read everything again. The
    /// owner says so in the log, with what it knows of the loss.
    public mutating func eventsLost(now: Instant) -> [Effect] {
        begin(now)
        effects.append(.loadIntent)
        effects.append(.read(ReadRequest(.everything, for: .rescan)))
        return finish()
    }

    /// A uevent refused before decoding (a forged or malformed datagram), logged rate-limited.
    public mutating func refused(_ reason: String, now: Instant) -> [Effect] {
        begin(now)
        reject("refused uevent datagram", ["reason": reason])
        return finish()
    }

    /// A burst of events from the monitor, in the order received.
    public mutating func receive(_ batch: [RawUevent], now: Instant) -> [Effect] {
        begin(now)
        var events: [Uevent] = []
        events.reserveCapacity(batch.count)
        for raw in batch {
            do {
                events.append(try UeventDecoder.decode(raw))
            } catch {
                rejectedEvents += 1
                reject("rejected uevent", ["reason": "\(error)", "devpath": raw.devpath ?? "-"])
            }
        }
        // Somebody else's offline of a device the daemon has online: `hotplugd offline` writes the
        // intent file before it writes sysfs, so read it first to know whose offline it is.
        let reloadIntent = events.contains { $0.action == .offline && records[$0.device]?.state == .online }
        if reloadIntent { effects.append(.loadIntent) }
        // Events about devices never seen (other than add and remove): read what they are first.
        // Only a device's first event in the burst counts: one that follows its `add` (a CPU's
        // `bind`, the kernel's own `online`) finds it added, not unknown.
        var unknown = Set<DeviceID>()
        var seen = Set<DeviceID>()
        for event in events where records[event.device] == nil && seen.insert(event.device).inserted {
            if event.action != .add && event.action != .remove { unknown.insert(event.device) }
        }
        // A block somebody else onlined (the kernel inside the add, an operator): its zone and node
        // are read before its line is logged. hotplugd's own writes are online before their
        // events arrive, and need no read.
        let onlinedElsewhere = events.filter {
            $0.action == .online && $0.device.kind == .memory && records[$0.device]?.state != .online
        }.map(\.device)
        if unknown.isEmpty && onlinedElsewhere.isEmpty && !reloadIntent {
            apply(events)
        } else {
            // The events wait for the answers (a read of no device is answered at once).
            let ids = unknown.union(onlinedElsewhere).sorted()
            effects.append(
                .read(ReadRequest(.devices(ids, zonesWithoutNode: false), for: .discover(events, unknown: unknown))))
        }
        return finish()
    }

    /// Called when `nextDeadline` has passed: memory blocks that waited for their links are
    /// looked at again, and decided once ready or once they have waited long enough.
    public mutating func tick(now: Instant) -> [Effect] {
        begin(now)
        retryFailed()
        act(on: Array(waiting.keys) + Array(kernelPending.keys))
        return finish()
    }

    /// When `tick` should next run, if anything is waiting.
    public var nextDeadline: Instant? {
        let poll = waiting.values.min().map { (lastMemoryCheck ?? $0) + options.memoryGroupPoll }
        let retry = retries.values.map(\.at).min()
        let quiet = kernelPending.values.min().map { (lastMemoryActivity ?? $0) + options.kernelOnlineGrace }
        return [poll, retry, quiet].compactMap { $0 }.min()
    }

    /// A new configuration. Devices are not decided again until something happens to them, except
    /// those others took offline when `enforce` was just turned on.
    public mutating func reconfigure(_ config: Config, now: Instant) -> [Effect] {
        begin(now)
        let newlyEnforced = DeviceKind.allCases.contains { config.enforces($0) && !self.config.enforces($0) }
        self.config = config
        // A reload reads the intent file again too: an operator who mended it says so this way.
        effects.append(.loadIntent)
        if newlyEnforced { applyEnforce() }
        return finish()
    }

    /// The answer to an `Effect.read`.
    public mutating func answer(_ request: ReadRequest, _ readings: Readings, now: Instant) -> [Effect] {
        begin(now)
        for (id, reason) in readings.failures.sorted(by: { $0.key < $1.key }) {
            // Left as it was: the next event about it, or the next rescan, reads it again.
            log(
                .error, "cannot read device; it is read again at its next event or rescan",
                ["device": id.name, "error": reason])
        }
        for failure in readings.otherFailures {
            guard let suppressed = readWarnings.admit(now: now) else { continue }
            log(.warning, failure, suppressed > 0 ? ["suppressed": "\(suppressed)"] : [:])
        }
        if request.what == .everything || request.what == .firmwareRAM {
            firmwareRAM = readings.firmwareRAM
            firmwareRAMRead = true
        }
        if let ranges = readings.daxRAM { daxRAM = ranges }
        switch request.purpose {
        case .classify(let ids):
            for id in ids { classify(id) }
        case .start(let act):
            learn(readings, cause: .scan)
            loadBaseline()
            // A scan that ended early fails the start: decided on part of the machine, the devices
            // not reached would lose their intent as gone, and coldplug would count a wrong baseline.
            guard readings.scanError == nil else { break }
            // Also for a look only: `status` shows no intent of a device online or gone since.
            squareIntent()
            if act { coldplug() }
        case .rescan:
            if let error = readings.scanError { log(.error, "rescan failed", ["error": error]) }
            learn(readings, cause: .rescan)
            sayTakenBackByDriver()
            // A failed device gets one more chance after a rescan; blocked ones never do.
            for (id, record) in records.sorted(by: { $0.key < $1.key }) where record.state == .failed {
                records[id]?.machine = DeviceMachine(state: .offline)
                log(.info, "retrying after rescan", ["device": id.name])
            }
            act(on: Array(records.keys))
        case .discover(let events, let unknown):
            for (id, reading) in readings.devices.sorted(by: { $0.key < $1.key }) {
                if unknown.contains(id) {
                    take(reading, of: id, cause: .discover)
                } else if let block = reading.block, reading.state == .online {
                    // Only where it went: its `online` event, applied next, is the transition.
                    setBlock(id, block)
                }
            }
            apply(events, alreadyRead: Set(readings.devices.filter { $0.value.block != nil }.keys))
        case .added(let touched):
            for (id, reading) in readings.devices.sorted(by: { $0.key < $1.key }) {
                let byKernel = reading.state == .online && kernelOnlines(id)
                take(reading, of: id, cause: .event(.add), by: byKernel ? .kernel : nil)
            }
            flushIntent()
            act(on: touched)
        case .decide(var pass):
            for (id, reading) in readings.devices.sorted(by: { $0.key < $1.key }) {
                pass.read.insert(id)
                if let block = reading.block, records[id]?.isPresent == true { setBlock(id, block) }
            }
            if case .nodes(let ids, _) = request.what {
                pass.read.formUnion(ids)
                for (id, node) in readings.nodes.sorted(by: { $0.key < $1.key }) where records[id]?.isPresent == true {
                    guard var block = records[id]?.block else { continue }
                    block.node = node
                    setBlock(id, block)
                }
            }
            if case .dimm = request.what { joinDIMM(readings) }
            decideMemory(pass)
        case .onlined(let result):
            for (id, reading) in readings.devices { noteOnlined(id, reading) }
            if case .onlined(let id, _, _) = request.what { finishWrite(id, result) }
        case .following:
            // The run ends at the first block not offline, or one known already.
            var run: [DeviceID] = []
            for (id, reading) in readings.devices.sorted(by: { $0.key < $1.key }) {
                guard reading.state == .offline, records[id]?.isPresent != true else { break }
                run.append(id)
            }
            takeInFollowing(run)
        }
        return finish()
    }

    /// The end of an `Effect.write`; `endedAt` dates it for the time-to-online metric.
    ///
    /// `alreadyThere`: the kernel refused the write and a read-back found the device online
    /// already. In kernel mode that is the kernel's onlining inside the add, which the write waited
    /// for (both hold the device hotplug lock): how hotplugd tells, without a timeout, that the
    /// kernel is done with a block it read offline.
    public mutating func written(
        _ id: DeviceID, _ value: OnlineValue, outcome: OnlineOutcome, attempts: Int, alreadyThere: Bool = false,
        endedAt: Instant, now: Instant
    ) -> [Effect] {
        begin(now)
        guard records[id] != nil else {
            writesInFlight = max(0, writesInFlight - 1)
            return finish()
        }
        let by: Onliner? = kernelOnlines(id) ? (alreadyThere ? .kernel : .hotplugd) : nil
        effects.append(
            .finished(
                OnlineOperation(
                    device: id, outcome: outcome, sinceAdded: records[id]?.addedAt.map { endedAt - $0 },
                    byKernel: by == .kernel)))
        if outcome == .succeeded, let added = records[id]?.addedAt {
            records[id]?.timeToOnline = endedAt - added
            noteOnlineAfterAdd(id, addedAt: added, onlineAt: endedAt, byKernel: by == .kernel)
        }
        records[id]?.addedAt = nil
        let finish = WriteResult(value: value, outcome: outcome, attempts: attempts, by: by)
        if outcome == .succeeded, id.kind == .memory || records[id]?.node == nil {
            // The zone and node first, so the transition's line says where the device went. A block
            // written before its node link appeared: the write waited for the add, so the link is
            // there now. A DIMM's blocks share a node: the previous block's is tried first, unless
            // the block's own is known.
            let hint = id.kind == .memory ? records[id]?.node ?? nodeHint(before: id) : nil
            let zone: Zone? = value == .onlineMovable ? .movable : nil
            effects.append(.read(ReadRequest(.onlined(id, nodeHint: hint, zone: zone), for: .onlined(finish))))
        } else {
            finishWrite(id, finish)
        }
        return self.finish()
    }

    /// Applies a write's outcome; after a memory block with a type of its own, looks at the blocks
    /// after it.
    mutating func finishWrite(_ id: DeviceID, _ result: WriteResult) {
        writesInFlight = max(0, writesInFlight - 1)
        let transition = apply(
            .onlineFinished(result.outcome), to: id, cause: .write, value: result.value, attempts: result.attempts,
            by: result.by)
        if result.by == .hotplugd, result.outcome == .succeeded, transition != nil {
            // "Auto-onlining can fail. The kernel won't retry." (memory-hotplug.rst)
            log(
                .notice, "the kernel left a new block offline; hotplugd onlined it", ["device": id.name],
                kind: .memoryOnlining)
        }
        if result.outcome == .succeeded, records[id]?.state == .online,
            let next = followingBlock(after: id, value: result.value)
        {
            effects.append(.read(ReadRequest(.offlineRun(from: next, atMost: Self.followingRun), for: .following)))
        }
    }

    /// The answer to an `Effect.loadIntent`.
    public mutating func intentLoaded(_ reading: IntentReading, now: Instant) -> [Effect] {
        begin(now)
        takeIntent(reading)
        return finish()
    }

    // MARK: - Bookkeeping

    mutating func begin(_ now: Instant) {
        precondition(effects.isEmpty, "an input arrived while the effects of the previous one were still held")
        self.now = now
    }

    mutating func finish() -> [Effect] {
        flushIntent()
        classifyOnlined()
        defer { effects = [] }
        return effects
    }

    mutating func log(
        _ level: LogRecord.Level, _ message: String, _ metadata: [String: String] = [:], kind: LogKind? = nil
    ) {
        effects.append(.log(LogRecord(level, message, metadata, kind: kind)))
    }

    private mutating func reject(_ message: String, _ metadata: [String: String]) {
        guard let suppressed = rejections.admit(now: now) else { return }
        var metadata = metadata
        if suppressed > 0 { metadata["suppressed"] = "\(suppressed)" }
        log(.warning, message, metadata)
    }
}
