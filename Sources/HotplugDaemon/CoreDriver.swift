import HotplugCore
import HotplugSystem
import Logging
import Synchronization

/// Runs the decision core against the machine: performs its effects (sysfs reads and writes,
/// the intent file, log lines) and hands each result back, until an input's work is done.
///
/// The daemon, `hotplugd status` and the offline/online commands all drive the same core through
/// this type; only the daemon feeds it events. Everything here blocks (sysfs writes wait on the
/// kernel's device hotplug lock), so the daemon calls it from a thread of its own, never from
/// Swift's cooperative pool.
public final class CoreDriver {
    public private(set) var core: DecisionCore
    public let sysfs: any SysfsAccess
    let actuator: Actuator
    let intentStore: IntentStore?
    let logger: Logger
    /// Looked at before every read and write: once it says stop, what is left of the work is
    /// dropped (the process is about to end; the next start scans again).
    var shouldStop: @Sendable () -> Bool = { false }
    /// Told when an effect starts and when the work is done, for the watchdog.
    var heartbeat: Heartbeat?
    /// The kernel's onlining settings, set from each configuration; nil leaves them alone (and
    /// the core onlines memory itself).
    private(set) var kernelOnline: KernelOnlineControl?
    /// Device changes and online writes since the last `take…()`.
    /// Memory blocks' transitions, said per run of blocks (`LogDigest`); nil: each as it comes.
    /// The daemon's driver has one, the commands' (which log nothing) none.
    public var digest: LogDigest?
    private var changes: [DeviceChange] = []
    private var operations: [OnlineOperation] = []
    /// The time the current input was given. Its answers carry the same time: the core's clock
    /// moves with inputs only, so a trace replays the same (a write's end time is passed apart,
    /// for the time-to-online metric).
    private var now = ContinuousClock.now
    /// The latest time read: the input's, or the end of its last write. Log lines are held by it,
    /// which needs no reading of the clock per line (in a guest whose clock source QEMU emulates,
    /// each reading is a trap).
    private var latest = ContinuousClock.now

    public init(
        config: Config, sysfs: any SysfsAccess, options: DecisionCore.Options = .init(),
        retry: Actuator.Retry = .init(), intentStore: IntentStore? = nil, logger: Logger
    ) {
        var options = options
        options.logsDebug = logger.logLevel <= .debug
        self.core = DecisionCore(config: config, options: options, now: .now)
        self.sysfs = sysfs
        self.actuator = Actuator(sysfs: sysfs, retry: retry)
        self.intentStore = intentStore
        self.logger = logger
    }

    // MARK: - Inputs

    /// Reads every device, then onlines what coldplug and the policy allow.
    public func start() throws(SysfsError) {
        try begin(act: true)
    }

    /// Reads every device and acts on nothing (for `hotplugd status` and the commands).
    public func scanOnly() throws(SysfsError) {
        try begin(act: false)
    }

    /// A burst of events from the monitor. Returns how many the decoder refused.
    @discardableResult
    public func handle(_ batch: [RawUevent], now: ContinuousClock.Instant = .now) -> Int {
        let before = core.rejectedEvents
        run { $0.receive(batch, now: now) }
        return core.rejectedEvents - before
    }

    public func refused(_ reason: String, now: ContinuousClock.Instant = .now) {
        run { $0.refused(reason, now: now) }
    }

    /// Rescans sysfs after events were lost and onlines whatever the policy wants online.
    public func eventsLost(now: ContinuousClock.Instant = .now) {
        run { $0.eventsLost(now: now) }
        kernelOnline?.verify()
    }

    public func tick(now: ContinuousClock.Instant = .now) {
        run { $0.tick(now: now) }
    }

    /// From now on the kernel's onlining settings follow the configuration: set now, and again
    /// at each `update(config:)`, checked after each rescan.
    public func manageKernelOnline(with control: KernelOnlineControl) {
        kernelOnline = control
        core.memoryOnlining = control.apply(core.config.memory)
    }

    /// A new configuration: the kernel's settings first, so that the core knows who onlines.
    public func update(config: Config, now: ContinuousClock.Instant = .now) {
        if let kernelOnline {
            kernelOnline.verify()
            core.memoryOnlining = kernelOnline.apply(config.memory)
        }
        run { $0.reconfigure(config, now: now) }
    }

    public var nextDeadline: ContinuousClock.Instant? { core.nextDeadline }

    /// When the held memory transitions are due to be said.
    public var logDeadline: ContinuousClock.Instant? { digest?.deadline }

    /// Says the held memory transitions: when due, or before a stop.
    public func sayHeldTransitions() {
        guard let records = digest?.take() else { return }
        for record in records { log(record) }
    }

    private func log(_ record: LogRecord) {
        logger.log(
            level: record.level.loggerLevel, "\(record.message)", metadata: record.metadata.mapValues { .string($0) })
    }

    /// Whether the kernel onlines hot-added memory inside the add (see `CoreLoop`).
    public var kernelOnlinesMemory: Bool { core.memoryOnlining.isKernel }

    /// The device changes since the last call, for hooks and metrics.
    public func takeChanges() -> [DeviceChange] {
        defer { changes = [] }
        return changes
    }

    /// The online writes since the last call, for metrics.
    public func takeOperations() -> [OnlineOperation] {
        defer { operations = [] }
        return operations
    }

    private func begin(act: Bool) throws(SysfsError) {
        // Unreadable, the block size would be a guess, and every auto-movable ratio wrong with it:
        // refuse to go on rather than decide on a guess.
        _ = try sysfs.memoryBlockSize()
        var scanError: String?
        run(
            { $0.start(act: act, now: .now) },
            onScan: { readings in scanError = readings.scanError })
        if let scanError {
            throw SysfsError(path: "\(sysfs.root)/devices/system", operation: "scan (\(scanError))", errno: .ioError)
        }
    }

    // MARK: - Performing effects

    /// Feeds one input to the core and performs its effects depth-first: a read's or write's
    /// answer, and whatever that answer calls for, comes before the next effect of the input.
    ///
    /// But for writes with no read between them (a DIMM's blocks, a run of following blocks): they
    /// are performed back to back, with the log lines and changes between them in their place, and
    /// then answered one by one, each with what its answer calls for. The core
    /// decided every one of them already, and its work on an answer (where the block went, its
    /// line, the next blocks) would otherwise sit between the kernel's onlinings, each write
    /// waiting for it.
    private func run(
        _ input: (inout DecisionCore) -> [Effect], onScan: ((Readings) -> Void)? = nil
    ) {
        core.wallClockSeconds = IntentStore.now
        var stack: [Frame] = [.effects(input(&core)[...])]
        now = core.now
        latest = now
        while let frame = stack.popLast() {
            heartbeat?.beat()
            switch frame {
            case .effects(var effects):
                guard let effect = effects.popFirst() else { continue }
                guard effect.isWrite else {
                    if !effects.isEmpty { stack.append(.effects(effects)) }
                    if let next = perform(effect, onScan: onScan), !next.isEmpty { stack.append(.effects(next[...])) }
                    continue
                }
                var performed: [PerformedWrite] = []
                var next: Effect? = effect
                while let effect = next, !shouldStop() {
                    if case .write(let id, let value) = effect {
                        if !performed.isEmpty { heartbeat?.beat() }
                        let result = actuator.online(id, value: value.sysfsValue)
                        latest = .now
                        performed.append(PerformedWrite(device: id, value: value, result: result, endedAt: latest))
                    } else {
                        _ = perform(effect, onScan: onScan)
                    }
                    next = effects.first.flatMap { $0.isAnswered && !$0.isWrite ? nil : effects.removeFirst() }
                }
                if !effects.isEmpty { stack.append(.effects(effects)) }
                stack.append(.written(performed[...]))
            case .written(var performed):
                guard let write = performed.popFirst() else { continue }
                if !performed.isEmpty { stack.append(.written(performed)) }
                let next = core.written(
                    write.device, write.value, outcome: write.result.outcome, attempts: write.result.attempts,
                    alreadyThere: write.result.alreadyThere, endedAt: write.endedAt, now: now)
                if !next.isEmpty { stack.append(.effects(next[...])) }
            }
        }
        heartbeat?.idle()
    }

    /// What is left of one step of `run`: effects to perform, or writes performed and not yet answered.
    private enum Frame {
        case effects(ArraySlice<Effect>)
        case written(ArraySlice<PerformedWrite>)
    }

    private struct PerformedWrite {
        var device: DeviceID
        var value: OnlineValue
        var result: Actuator.Result
        /// For the time-to-online metric.
        var endedAt: ContinuousClock.Instant
    }

    private func perform(_ effect: Effect, onScan: ((Readings) -> Void)?) -> [Effect]? {
        switch effect {
        case .read(let request):
            if shouldStop() { return nil }
            // A scan of a great machine is one read: it beats the heartbeat as it goes.
            let readings = sysfs.answer(request.what) { [heartbeat, shouldStop] in
                heartbeat?.beat()
                return !shouldStop()
            }
            if request.what == .everything { onScan?(readings) }
            return core.answer(request, readings, now: now)
        case .write:
            preconditionFailure("writes are performed by run(_:onScan:)")
        case .loadIntent:
            guard let intentStore else { return nil }
            do {
                let (intent, badLines) = try intentStore.load()
                return core.intentLoaded(.loaded(intent, badLines: badLines), now: now)
            } catch {
                return core.intentLoaded(.unreadable("\(intentStore.path): \(error)"), now: now)
            }
        case .persistIntent(let changes):
            guard let intentStore else { return nil }
            do {
                try intentStore.update { stored in
                    for (id, entry) in changes { stored[id] = entry }
                }
            } catch {
                logger.error(
                    "cannot write the intent file; the change holds until the daemon stops",
                    metadata: ["path": "\(intentStore.path)", "error": "\(error)"])
            }
        case .log(let record):
            if digest != nil, LogDigest.takes(record) {
                digest?.hold(record, now: latest)
            } else {
                log(record)
            }
        case .changed(let change):
            changes.append(change)
        case .finished(let operation):
            operations.append(operation)
        }
        return nil
    }
}

extension LogRecord.Level {
    var loggerLevel: Logger.Level {
        switch self {
        case .debug: .debug
        case .info: .info
        case .notice: .notice
        case .warning: .warning
        case .error: .error
        }
    }
}

/// When the core's thread started its current piece of work, or that it is idle: the watchdog
/// pings systemd only while work moves on.
///
/// Beaten at every effect, so it reads CLOCK_MONOTONIC_COARSE: a word the vDSO keeps, to a tick,
/// where CLOCK_MONOTONIC reads the clock source (a trap into the hypervisor when that is the
/// HPET, as in TCG guests); the watchdog's limit is seconds.
public final class Heartbeat: Sendable {
    /// CLOCK_MONOTONIC_COARSE in microseconds at the start of the current effect; 0 when idle.
    private let busySince = Atomic<UInt64>(0)

    public init() {}

    func beat() { busySince.store(ServiceManager.coarseMonotonicMicroseconds, ordering: .relaxed) }
    func idle() { busySince.store(0, ordering: .relaxed) }

    /// Whether the thread is idle or its current effect started less than `limit` ago.
    public func isAlive(limit: Duration) -> Bool {
        let since = busySince.load(ordering: .relaxed)
        guard since != 0 else { return true }
        let (seconds, attoseconds) = limit.components
        let limitMicroseconds = UInt64(seconds) * 1_000_000 + UInt64(attoseconds / 1_000_000_000_000)
        return ServiceManager.coarseMonotonicMicroseconds &- since < limitMicroseconds
    }
}

extension Effect {
    /// Whether the core hears back about it: a read, a write, the intent file loaded.
    fileprivate var isAnswered: Bool {
        switch self {
        case .read, .write, .loadIntent: true
        case .persistIntent, .log, .changed, .finished: false
        }
    }

    fileprivate var isWrite: Bool { if case .write = self { true } else { false } }
}
