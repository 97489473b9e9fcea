import HotplugCore
import HotplugSystem
import Logging
import ServiceLifecycle
import UnixSignals

/// The running daemon: the monitor thread feeding the engine, as a service-lifecycle `Service`.
///
/// The monitor starts before the start-up scan, so an event that arrives during the scan is
/// queued rather than lost; the engine then treats it like any other (duplicates are harmless).
/// Everything the engine reacts to (events, timers, SIGHUP, watchdog pings, shutdown) arrives
/// through one stream, so the engine is only ever touched by this task.
public final class Daemon: Service {
    public struct Options: Sendable {
        public var config: Config
        /// The file SIGHUP re-reads; nil means the defaults, and a reload has nothing to read.
        public var configPath: String?
        public var sysfsRoot = "/sys"
        public var dryRun = false
        /// Overrides `[monitor] source` from the command line.
        public var source: MonitorSource?
        /// Where the boot baseline is kept; nil keeps nothing.
        public var runtimeDirectory: String? = "/run/hotplugd"
        /// The operator-intent file's store; nil keeps intent in memory only.
        public var intentStore: IntentStore? = IntentStore(directory: IntentStore.defaultDirectory)
        /// For the `maxcpus=` rule of CPU coldplug; nil reads nothing (a test tree is not this machine).
        public var kernelCommandLinePath: String? = "/proc/cmdline"
        public var conflicts: ConflictCheck? = ConflictCheck()
        public var engine = Engine.Options()
        public var hooks = HookRunner.Options()

        public init(config: Config) {
            self.config = config
        }
    }

    /// What reaches the engine's task, in order.
    enum Input: Sendable {
        case monitor(MonitorMessage)
        case tick
        /// Time to write the metrics file, or a hook finished.
        case flush
        case reload
        case watchdog
        case stop
    }

    let options: Options
    let logger: Logger

    public init(options: Options, logger: Logger) {
        self.options = options
        self.logger = logger
    }

    public func run() async throws {
        let (inputs, continuation) = AsyncStream<Input>.makeStream()
        let source = options.source ?? options.config.monitor.source
        let monitor = try UdevMonitor(
            options: .init(source: source, receiveBufferBytes: options.config.monitor.receiveBufferBytes)
        ) { message in
            continuation.yield(.monitor(message))
        }
        defer { monitor.stop() }

        var iterator = inputs.makeAsyncIterator()
        guard case .monitor(let first) = await iterator.next() else { return }
        guard case .ready(let resolved, let bytes) = first else {
            throw DaemonError.monitor("\(first)")
        }
        logger.info(
            "listening for uevents",
            metadata: ["source": "\(resolved.rawValue)", "receive_buffer_bytes": "\(bytes)",
                       "dry_run": "\(options.dryRun)"])

        let baseline = options.runtimeDirectory.map { BootBaseline(directory: $0) }
        let engine = try makeEngine(baseline: baseline)
        let outputs = makeOutputs(continuation)
        try engine.start()
        keep(engine.bootKernelPages, in: baseline)
        logPresentDevices(engine)
        options.conflicts?.warn(sysfs: engine.sysfs, logger: logger)
        _ = await outputs.publish(engine)
        ServiceManager.notify("READY=1", "STATUS=\(engine.summary())")

        let background = startBackgroundInputs(continuation)
        defer { background.forEach { $0.cancel() } }
        try await withGracefulShutdownHandler {
            try await serve(engine, outputs: outputs, inputs: &iterator, continuation: continuation)
        } onGracefulShutdown: {
            continuation.yield(.stop)
        }
        ServiceManager.notify("STOPPING=1")
        logger.info("stopping")
        await outputs.hooks.stop()
        _ = outputs.writeMetrics(engine, force: true)
    }

    private func makeOutputs(_ continuation: AsyncStream<Input>.Continuation) -> DaemonOutputs {
        let metrics = options.config.metrics.textfile.map { DaemonMetrics(path: $0) }
        var hookOptions = options.hooks
        hookOptions.dryRun = options.dryRun
        let hooks = HookRunner(hooks: options.config.hooks, options: hookOptions, logger: logger) { run, result, _ in
            metrics?.hookRan(run, result: result)
            continuation.yield(.flush)
        }
        return DaemonOutputs(hooks: hooks, metrics: metrics, logger: logger)
    }

    /// SIGHUP and, when systemd asks for them, watchdog pings, as inputs of the loop.
    private func startBackgroundInputs(_ continuation: AsyncStream<Input>.Continuation) -> [Task<Void, Never>] {
        var tasks = [
            Task {
                for await _ in await UnixSignalsSequence(trapping: .sighup) { continuation.yield(.reload) }
            }
        ]
        if let interval = ServiceManager.watchdogInterval {
            // Pinged from the loop, not from here: a loop that is stuck stops the pings.
            tasks.append(Task {
                while !Task.isCancelled {
                    try? await Task.sleep(for: interval / 3)
                    continuation.yield(.watchdog)
                }
            })
        }
        return tasks
    }

    /// The event loop: one input at a time, until SIGTERM/SIGINT or cancellation.
    private func serve(
        _ engine: Engine, outputs: DaemonOutputs, inputs iterator: inout AsyncStream<Input>.Iterator,
        continuation: AsyncStream<Input>.Continuation
    ) async throws {
        var scheduledTick: ContinuousClock.Instant?
        var scheduledFlush: ContinuousClock.Instant?
        var lastStatus = ContinuousClock.now
        while let input = await iterator.next() {
            switch input {
            case .monitor(.events(let batch)):
                outputs.metrics?.received(batch)
                outputs.touch()
                let rejected = engine.handle(batch)
                outputs.metrics?.rejected(stage: "decode", count: rejected)
            case .monitor(.refused(let reason)):
                outputs.metrics?.rejected(stage: "datagram")
                outputs.touch()
                engine.refused(reason)
            case .monitor(.eventsLost):
                logger.warning("the kernel dropped uevents", metadata: ["kind": "events-lost"])
                outputs.metrics?.eventsLost()
                outputs.touch()
                engine.reconcile(reason: "the kernel dropped uevents (ENOBUFS)")
            case .monitor(.failed(let reason)):
                throw DaemonError.monitor(reason)
            case .monitor(.ready):
                break
            case .tick:
                scheduledTick = nil
                engine.tick()
            case .flush:
                scheduledFlush = nil
                outputs.touch()
            case .reload:
                await reload(engine, outputs: outputs)
            case .watchdog:
                ServiceManager.notify("WATCHDOG=1")
            case .stop:
                return
            }
            if let due = await outputs.publish(engine), scheduledFlush == nil {
                scheduledFlush = due
                Task {
                    try? await Task.sleep(until: due, clock: .continuous)
                    continuation.yield(.flush)
                }
            }
            if ContinuousClock.now - lastStatus > .seconds(1) {
                lastStatus = .now
                ServiceManager.notify("STATUS=\(engine.summary())")
            }
            if let deadline = engine.nextDeadline, scheduledTick == nil || deadline < scheduledTick! {
                scheduledTick = deadline
                Task {
                    try? await Task.sleep(until: deadline, clock: .continuous)
                    continuation.yield(.tick)
                }
            }
        }
    }

    /// Re-reads the configuration file. A configuration that does not load is logged and the one
    /// in force stays, whole: nothing of a broken file is applied.
    private func reload(_ engine: Engine, outputs: DaemonOutputs) async {
        ServiceManager.notify("RELOADING=1", "MONOTONIC_USEC=\(ServiceManager.monotonicMicroseconds)")
        defer { ServiceManager.notify("READY=1", "STATUS=\(engine.summary())") }
        guard let path = options.configPath else {
            logger.notice("reload: no configuration file in use; the defaults stay")
            return
        }
        do {
            let config = try ConfigLoader.load(path: path, required: true)
            if config.monitor != engine.config.monitor || config.metrics != engine.config.metrics {
                logger.notice("reload: [monitor] and [metrics] settings take effect at the next start")
            }
            engine.update(config: config)
            await outputs.hooks.update(hooks: config.hooks)
            logger.notice("configuration reloaded", metadata: ["path": "\(path)"])
        } catch {
            logger.error(
                "configuration reload failed; the configuration in force stays",
                metadata: ["error": "\(error)", "path": "\(path)", "kind": "reload-failed"])
        }
    }

    private func makeEngine(baseline: BootBaseline?) throws -> Engine {
        var engineOptions = options.engine
        engineOptions.dryRun = options.dryRun
        // Unreadable (no /proc in a container), the rule finds no `maxcpus=`: the empty default.
        engineOptions.kernelCommandLine = options.kernelCommandLinePath.flatMap { try? TextFile.read($0) } ?? ""
        if engineOptions.bootKernelPages == nil { engineOptions.bootKernelPages = baseline?.load() }
        return Engine(
            config: options.config, sysfs: try Sysfs(root: options.sysfsRoot), options: engineOptions,
            intentStore: options.intentStore, logger: logger)
    }

    /// Stores the baseline counted at this start, unless it came from the store already.
    private func keep(_ pages: [Int: Int], in baseline: BootBaseline?) {
        guard let baseline, !options.dryRun, baseline.load() == nil else { return }
        do {
            try baseline.store(pages)
        } catch {
            logger.notice(
                "cannot keep the boot memory baseline; a restart will count it again",
                metadata: ["path": "\(baseline.directory)", "error": "\(error)"])
        }
    }

    private func logPresentDevices(_ engine: Engine) {
        let devices = engine.presentDevices()
        for kind in DeviceKind.allCases {
            let ofKind = devices.filter { $0.key.kind == kind }
            // One field per state, listing the devices as a kernel-style range list ("0-3,8").
            var byState: [DeviceState: [Int]] = [:]
            for (id, state) in ofKind { byState[state, default: []].append(id.index) }
            var metadata: Logger.Metadata = ["total": "\(ofKind.count)"]
            for (state, indices) in byState {
                metadata[state.rawValue] = "\(CPUList(indices.map { $0...$0 }))"
            }
            logger.info("\(kind) devices present", metadata: metadata)
        }
    }
}

public enum DaemonError: Error, CustomStringConvertible {
    case monitor(String)

    public var description: String {
        switch self {
        case .monitor(let reason): "uevent monitor: \(reason)"
        }
    }
}
