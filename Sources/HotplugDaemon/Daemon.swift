import Glibc
import HotplugCore
import HotplugSystem
import Logging
import ServiceLifecycle
import UnixSignals

/// The running daemon, as a service-lifecycle `Service`.
///
/// Three threads of control: the monitor thread receives uevents and puts them in a bounded
/// queue (`InputQueue`); the core's thread (`CoreLoop`) takes them one burst at a time and does
/// every sysfs read and write; this task publishes what came of them (hooks, metrics, STATUS=),
/// pings the watchdog while the core's thread makes progress, and turns SIGHUP and SIGTERM into
/// inputs that no backlog delays. The monitor starts before the start-up scan, so an event that
/// arrives during the scan is queued rather than lost (duplicates are harmless).
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
        /// Whether the kernel's memory onlining settings may be set (see `KernelOnlineControl`);
        /// never in a dry run.
        public var setsKernelOnline = true
        public var core = DecisionCore.Options()
        public var retry = Actuator.Retry()
        public var hooks = HookRunner.Options()
        /// Events queued for the core at most; past that a burst counts as lost events.
        /// 16,384 is four full bursts of the monitor, a few MiB at most.
        public var queueCapacity = 16_384

        public init(config: Config) {
            self.config = config
        }
    }

    let options: Options
    let logger: Logger

    public init(options: Options, logger: Logger) {
        self.options = options
        self.logger = logger
    }

    public func run() async throws {
        let queue = InputQueue(capacity: options.queueCapacity)
        let (startup, startupContinuation) = AsyncStream<MonitorMessage>.makeStream()
        let source = options.source ?? options.config.monitor.source
        let monitor = try UdevMonitor(
            options: .init(source: source, receiveBufferBytes: options.config.monitor.receiveBufferBytes)
        ) { message in
            switch message {
            case .ready:
                startupContinuation.yield(message)
            case .failed:
                startupContinuation.yield(message)
                queue.push(message)
            default:
                queue.push(message)
            }
        }
        defer { monitor.stop() }

        var startupMessages = startup.makeAsyncIterator()
        guard let first = await startupMessages.next() else { return }
        guard case .ready(let resolved, let bytes, let schedulingRefused) = first else {
            throw DaemonError.monitor("\(first)")
        }
        logger.info(
            "listening for uevents",
            metadata: [
                "source": "\(resolved.rawValue)", "dry_run": "\(options.dryRun)",
                // The kernel reserves twice what it is asked for (socket(7), SO_RCVBUF): both are said.
                "receive_buffer_bytes": "\(options.config.monitor.receiveBufferBytes)",
                "socket_buffer_bytes": "\(bytes)",
            ])
        if let schedulingRefused {
            logSchedulingRefused(schedulingRefused, thread: "monitor")
        }

        // Opened once for the process: the boot baseline and the kernel-online record live there.
        let runtime = options.runtimeDirectory.map { OwnDirectory($0) }
        let baseline = runtime.map { BootBaseline(directory: $0) }
        let driver = try makeDriver(baseline: baseline)
        let kernelOnline = try makeKernelOnline(driver, runtime: runtime)
        let heartbeat = Heartbeat()
        driver.heartbeat = heartbeat
        driver.shouldStop = { queue.isStopped }
        let (publications, publish) = AsyncStream<CoreLoop.Publication>.makeStream()
        let outputs: DaemonOutputs
        do {
            outputs = try makeOutputs(publish)
        } catch {
            kernelOnline?.restore()
            throw error
        }
        let loop = CoreLoop(
            driver: driver, queue: queue, metrics: outputs.metrics, logger: logger, publish: publish
        ) { [self] driver in
            keep(driver.core, in: baseline)
            logPresentDevices(driver.core)
            options.conflicts?.warn(sysfs: driver.sysfs, onlining: driver.core.memoryOnlining, logger: logger)
        }
        // `hotplugd status` and `hotplugd monitor` ask the daemon itself; without the socket
        // they read sysfs, so a daemon that cannot make it still serves.
        let control: ControlServer?
        do {
            // A dry run writes no file at all, and a socket is one.
            control =
                try options.dryRun
                ? nil : options.runtimeDirectory.map { try ControlServer(directory: $0, queue: queue, logger: logger) }
        } catch {
            logger.warning(
                "no control socket: status and monitor will not reach this daemon", metadata: ["error": "\(error)"])
            control = nil
        }
        loop.control = control
        loop.onliningChanged = { monitor.holdMemoryBursts($0 ? .addsAndOnlines : .onlines) }
        let thread: DedicatedThread
        do {
            thread = try DedicatedThread { [self] in
                if let refused = ThreadScheduling.yieldToKernelWork() { logSchedulingRefused(refused, thread: "core") }
                loop.run()
            }
        } catch {
            control?.stop()
            kernelOnline?.restore()
            throw error
        }
        defer {
            queue.stop()
            thread.join()
            control?.stop()
            // Any orderly exit: a stopped hotplugd leaves onlining as it found it.
            kernelOnline?.restore()
        }

        var iterator = publications.makeAsyncIterator()
        switch await iterator.next() {
        case .started(let changes, let operations, let snapshot):
            _ = await outputs.publish(changes: changes, operations: operations, snapshot: snapshot)
            ServiceManager.notify("READY=1", "STATUS=\(snapshot.summary)")
        case .failed(let reason):
            throw DaemonError.stopped(reason)
        default:
            return
        }

        let background = startBackgroundInputs(queue, hooks: outputs.hooks, heartbeat: heartbeat)
        defer { background.forEach { $0.cancel() } }
        try await withGracefulShutdownHandler {
            try await serve(outputs, publications: &iterator, continuation: publish)
        } onGracefulShutdown: {
            queue.stop()
        }
        ServiceManager.notify("STOPPING=1")
        logger.info("stopping")
        await outputs.hooks.stop()
        await outputs.stop()
    }

    private func makeOutputs(
        _ continuation: AsyncStream<CoreLoop.Publication>.Continuation
    ) throws(DaemonError) -> DaemonOutputs {
        // A dry run writes no file at all, the metrics included.
        let metrics = options.dryRun ? nil : options.config.metrics.textfile.map { DaemonMetrics(path: $0) }
        var hookOptions = options.hooks
        hookOptions.dryRun = options.dryRun
        let hooks = HookRunner(hooks: options.config.hooks, options: hookOptions, logger: logger) { run, result, _ in
            metrics?.hookRan(run, result: result)
            continuation.yield(.flush)
        }
        return try DaemonOutputs(hooks: hooks, metrics: metrics, logger: logger)
    }

    /// SIGHUP as a new configuration for the core and the hooks, and, when systemd asks for them,
    /// watchdog pings while the core's thread is idle or its current step is younger than half the interval.
    private func startBackgroundInputs(
        _ queue: InputQueue, hooks: HookRunner, heartbeat: Heartbeat
    ) -> [Task<Void, Never>] {
        var tasks = [
            Task { [self] in
                var current = options.config
                for await _ in await UnixSignalsSequence(trapping: .sighup) {
                    current = await reload(current, queue: queue, hooks: hooks)
                }
            }
        ]
        if let interval = ServiceManager.watchdogInterval {
            tasks.append(
                Task {
                    while !Task.isCancelled {
                        do {
                            try await Task.sleep(for: interval / 4)
                        } catch {
                            return  // Cancelled: the daemon is stopping.
                        }
                        if heartbeat.isAlive(limit: interval / 2) { ServiceManager.notify("WATCHDOG=1") }
                    }
                })
        }
        return tasks
    }

    /// Publishes the core's results until its loop ends; one metrics flush is scheduled at a time.
    private func serve(
        _ outputs: DaemonOutputs, publications iterator: inout AsyncStream<CoreLoop.Publication>.Iterator,
        continuation: AsyncStream<CoreLoop.Publication>.Continuation
    ) async throws {
        var flush: Task<Void, Never>?
        defer { flush?.cancel() }
        var lastStatus = ContinuousClock.now
        while let publication = await iterator.next() {
            var due: ContinuousClock.Instant?
            switch publication {
            case .progress(let changes, let operations, let snapshot):
                due = await outputs.publish(changes: changes, operations: operations, snapshot: snapshot)
                if let snapshot, ContinuousClock.now - lastStatus > .seconds(1) {
                    lastStatus = .now
                    ServiceManager.notify("STATUS=\(snapshot.summary)")
                }
            case .flush:
                flush = nil
                outputs.touch()
                due = outputs.writeMetrics()
            case .failed(let reason):
                throw DaemonError.stopped(reason)
            case .started:
                break
            }
            if let due, flush == nil {
                flush = Task {
                    do {
                        try await Task.sleep(until: due, clock: .continuous)
                    } catch {
                        return  // Cancelled: the daemon is stopping and writes the file itself.
                    }
                    continuation.yield(.flush)
                }
            }
        }
    }

    /// Re-reads the configuration file, queues it for the core and hands its hooks to the runner
    /// (they live on this side, not in the core). A configuration that does not load is logged and
    /// the one in force stays, whole: nothing of a broken file is applied.
    private func reload(_ current: Config, queue: InputQueue, hooks: HookRunner) async -> Config {
        ServiceManager.notify("RELOADING=1", "MONOTONIC_USEC=\(ServiceManager.monotonicMicroseconds)")
        defer { ServiceManager.notify("READY=1") }
        guard let path = options.configPath else {
            logger.notice("reload: no configuration file in use; the defaults stay")
            return current
        }
        do {
            let config = try ConfigLoader.load(path: path, required: true)
            if config.monitor != current.monitor || config.metrics != current.metrics {
                logger.notice("reload: [monitor] and [metrics] settings take effect at the next start")
            }
            queue.reconfigure(config)
            await hooks.update(hooks: config.hooks)
            logger.notice("configuration reloaded", metadata: ["path": "\(path)"])
            return config
        } catch {
            logger.error(
                "configuration reload failed; the configuration in force stays",
                metadata: ["error": "\(error)", "path": "\(path)", "kind": "\(LogKind.reloadFailed.rawValue)"])
            return current
        }
    }

    private func makeDriver(baseline: BootBaseline?) throws -> CoreDriver {
        var coreOptions = options.core
        coreOptions.dryRun = options.dryRun
        if let path = options.kernelCommandLinePath {
            do {
                coreOptions.kernelCommandLine = try TextFile.read(path)
            } catch {
                logger.warning(
                    "cannot read the kernel command line; CPU coldplug under auto is off",
                    metadata: ["path": "\(path)", "error": "\(error)"])
                coreOptions.kernelCommandLine = nil
            }
        }
        if coreOptions.bootKernelPages == nil, let baseline {
            do {
                coreOptions.bootKernelPages = try baseline.load()
            } catch {
                logger.warning(
                    "cannot read the boot memory baseline; it is counted again from what is online now",
                    metadata: ["path": "\(baseline.path)", "error": "\(error)"])
            }
        }
        let driver = CoreDriver(
            config: options.config, sysfs: try Sysfs(root: options.sysfsRoot), options: coreOptions,
            retry: options.retry, intentStore: options.intentStore, logger: logger)
        driver.digest = LogDigest()  // A DIMM is one line at info, its blocks' lines at debug.
        return driver
    }

    /// Sets the kernel's onlining settings from the configuration, or in a dry run says what it would set.
    private func makeKernelOnline(_ driver: CoreDriver, runtime: OwnDirectory?) throws -> KernelOnlineControl? {
        guard let sysfs = driver.sysfs as? Sysfs else { return nil }
        if options.dryRun || !options.setsKernelOnline {
            let plan = MemoryOnlining.plan(options.config.memory, kernel: sysfs.kernelOnlineSupport())
            logger.notice(
                "memory onlining: the kernel's settings are left as they are; hotplugd onlines new blocks itself",
                metadata: [
                    "mode": "userspace", "reason": "\(options.dryRun ? "dry run" : "not asked to set them")",
                    "plan": "\(plan.summary)", "kind": "\(LogKind.memoryOnlining.rawValue)",
                ])
            return nil
        }
        let control = KernelOnlineControl(sysfs: sysfs, runtimeDirectory: runtime, logger: logger)
        driver.manageKernelOnline(with: control)
        return control
    }

    /// Stores the baseline counted at this start, unless it came from the store already.
    private func keep(_ core: DecisionCore, in baseline: BootBaseline?) {
        guard let baseline, !options.dryRun, core.options.bootKernelPages == nil else { return }
        do {
            try baseline.store(core.bootKernelPages)
        } catch {
            logger.notice(
                "cannot keep the boot memory baseline; a restart will count it again",
                metadata: ["path": "\(baseline.directory)", "error": "\(error)"])
        }
    }

    /// A thread that stays under the default policy still works; its writes may sleep on the
    /// kernel's device hotplug lock during an add (see `ThreadScheduling`).
    private func logSchedulingRefused(_ error: Int32, thread: String) {
        logger.warning(
            "cannot run the \(thread) thread behind the kernel's hot-add work (SCHED_BATCH); it keeps the default policy",
            metadata: ["error": "\(String(cString: strerror(error))) (errno \(error))"])
    }

    private func logPresentDevices(_ core: DecisionCore) {
        let devices = core.presentDevices()
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
    case thread(String)
    /// The core's loop ended on an error (a failed start-up scan, the monitor gone).
    case stopped(String)
    /// The control socket cannot be set up.
    case control(String)

    public var description: String {
        switch self {
        case .monitor(let reason): "uevent monitor: \(reason)"
        case .thread(let reason): "cannot start the core's thread: \(reason)"
        case .stopped(let reason): reason
        case .control(let reason): "control socket: \(reason)"
        }
    }
}
