import CHotplug
import Glibc
import HotplugCore
import HotplugSystem
import Logging

/// Runs the configured hooks for the device changes the core reports, away from the core's
/// thread: a slow hook never delays onlining.
///
/// Changes are gathered until none has come for `settle` (at most `maxDelay` after the first), and
/// each hook then runs once per kind and event for all of them; changes that come while hooks run
/// make the next round. Hooks run one at a time, in configuration order.
public actor HookRunner {
    public struct Options: Sendable {
        public var settle: Duration = .milliseconds(100)
        public var maxDelay: Duration = .seconds(2)
        /// Between SIGTERM at the timeout and SIGKILL.
        public var killGrace: Duration = .seconds(5)
        /// Lines of a run's output that are logged; the rest are counted.
        public var outputLines = 200
        /// Bytes of one output line that are logged; the rest are counted on the line.
        public var lineBytes = 1000
        public var dryRun = false
        public init() {}
    }

    /// How one run ended.
    public typealias Result = HookProcess.Outcome

    private var hooks: [Config.Hook]
    private let options: Options
    private let logger: Logger
    private let finished: @Sendable (HookRun, Result, Duration) -> Void
    private var pending: [DeviceChange] = []
    private var lastSubmit = ContinuousClock.now
    private var worker: Task<Void, Never>?
    /// Signalled at stop: the running command's group is stopped (`HookProcess`).
    private let stopSignal: Int32

    public init(
        hooks: [Config.Hook], options: Options = Options(), logger: Logger,
        finished: @escaping @Sendable (HookRun, Result, Duration) -> Void = { _, _, _ in }
    ) {
        self.hooks = hooks
        self.options = options
        self.logger = logger
        self.finished = finished
        stopSignal = chotplug_eventfd()
    }

    deinit {
        if stopSignal >= 0 { close(stopSignal) }
    }

    /// Hooks of a reloaded configuration; changes not yet run go to the new ones.
    public func update(hooks: [Config.Hook]) {
        self.hooks = hooks
    }

    public func submit(_ changes: [DeviceChange]) {
        guard !changes.isEmpty, !hooks.isEmpty else { return }
        pending += changes
        lastSubmit = .now
        if worker == nil { worker = Task { await drain() } }
    }

    /// Stops: a hook still running gets SIGTERM; changes not yet run are logged and dropped.
    public func stop() async {
        worker?.cancel()
        var one: UInt64 = 1
        if stopSignal >= 0, write(stopSignal, &one, 8) != 8 {
            logger.warning("cannot signal a running hook to stop", metadata: ["errno": "\(errno)"])
        }
        await worker?.value
        if !pending.isEmpty {
            logger.notice("stopping: hooks not run for \(pending.count) device changes")
            pending = []
        }
    }

    /// Waits until every change submitted so far has had its hooks run.
    public func idle() async {
        while let worker {
            await worker.value
            if self.worker == worker { break }
        }
    }

    private func drain() async {
        while !pending.isEmpty && !Task.isCancelled {
            let first = ContinuousClock.now
            while ContinuousClock.now - lastSubmit < options.settle, ContinuousClock.now - first < options.maxDelay {
                do {
                    try await Task.sleep(for: options.settle)
                } catch {
                    break  // Cancelled: the runner is stopping.
                }
            }
            let batch = pending
            pending = []
            for run in HookRun.plan(batch, hooks: hooks) {
                if Task.isCancelled {
                    pending = batch
                    break
                }
                await execute(run)
            }
        }
        worker = nil
    }

    private func execute(_ run: HookRun) async {
        var metadata: Logger.Metadata = [
            "hook": "\(run.hook.name)", "action": "\(run.event.rawValue)", "devices": "\(run.changes.count)",
        ]
        if options.dryRun {
            logger.notice("would run hook (dry run)", metadata: metadata)
            return
        }
        let started = ContinuousClock.now
        let result = await Self.spawn(run, options: options, stop: stopSignal, logger: logger)
        let elapsed = ContinuousClock.now - started
        metadata["result"] = "\(result.label)"
        metadata["duration_ms"] =
            "\(elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000)"
        metadata["kind"] = "\(LogKind.hook.rawValue)"
        switch result {
        case .exited(0):
            logger.info("hook ran", metadata: metadata)
        case .exited(let status):
            metadata["status"] = "\(status)"
            logger.warning("hook failed", metadata: metadata)
        case .signaled(let signal):
            metadata["signal"] = "\(signal)"
            logger.warning("hook killed by a signal", metadata: metadata)
        case .timedOut:
            logger.error("hook timed out and was stopped", metadata: metadata)
        case .stopped:
            logger.notice("hook stopped: hotplugd is stopping", metadata: metadata)
        case .couldNotStart(let reason):
            metadata["error"] = "\(reason)"
            logger.error("hook could not start", metadata: metadata)
        }
        finished(run, result, elapsed)
    }

    /// Runs the command on a thread of its own (it blocks until the command ends), with its
    /// output logged line by line, at most `outputLines` lines.
    private static func spawn(_ run: HookRun, options: Options, stop: Int32, logger: Logger) async -> Result {
        let name = run.hook.name
        return await withCheckedContinuation { continuation in
            do {
                try DedicatedThread.detached {
                    var lines = 0
                    let result = HookProcess.run(
                        command: run.hook.command, environment: run.environment, timeout: run.hook.timeout,
                        grace: options.killGrace, stop: stop, lineLimit: options.lineBytes
                    ) { line in
                        lines += 1
                        if lines <= options.outputLines {
                            logger.info("hook output", metadata: ["hook": "\(name)", "line": "\(line)"])
                        }
                    }
                    if lines > options.outputLines {
                        logger.info(
                            "hook output cut",
                            metadata: ["hook": "\(name)", "lines_not_logged": "\(lines - options.outputLines)"])
                    }
                    continuation.resume(returning: result)
                }
            } catch {
                continuation.resume(returning: .couldNotStart("\(error)"))
            }
        }
    }
}

extension HookProcess.Outcome {
    var label: String {
        switch self {
        case .exited(0): "succeeded"
        case .exited: "failed"
        case .signaled: "killed"
        case .timedOut: "timed-out"
        case .stopped: "stopped"
        case .couldNotStart: "not-started"
        }
    }
}
