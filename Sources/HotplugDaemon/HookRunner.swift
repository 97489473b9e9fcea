import HotplugCore
import Logging
import Subprocess

import struct SystemPackage.FilePath

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
        public var dryRun = false
        public init() {}
    }

    /// How one run ended.
    public enum Result: Sendable, Equatable {
        case exited(Int32)
        case signaled(Int32)
        case timedOut
        case couldNotStart(String)

        var label: String {
            switch self {
            case .exited(0): "succeeded"
            case .exited: "failed"
            case .signaled: "killed"
            case .timedOut: "timed-out"
            case .couldNotStart: "not-started"
            }
        }
    }

    private var hooks: [Config.Hook]
    private let options: Options
    private let logger: Logger
    private let finished: @Sendable (HookRun, Result, Duration) -> Void
    private var pending: [DeviceChange] = []
    private var lastSubmit = ContinuousClock.now
    private var worker: Task<Void, Never>?

    public init(
        hooks: [Config.Hook], options: Options = Options(), logger: Logger,
        finished: @escaping @Sendable (HookRun, Result, Duration) -> Void = { _, _, _ in }
    ) {
        self.hooks = hooks
        self.options = options
        self.logger = logger
        self.finished = finished
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
        let result = await Self.spawn(run, options: options, logger: logger)
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
        case .couldNotStart(let reason):
            metadata["error"] = "\(reason)"
            logger.error("hook could not start", metadata: metadata)
        }
        finished(run, result, elapsed)
    }

    /// Runs the command with its output (stdout and stderr together) logged line by line, and
    /// SIGTERM then SIGKILL when it outlives its timeout.
    private static func spawn(_ run: HookRun, options: Options, logger: Logger) async -> Result {
        let name = run.hook.name
        let limit = options.outputLines
        let grace = options.killGrace
        return await withTaskGroup(of: Result?.self) { group in
            group.addTask {
                var platform = PlatformOptions()
                platform.teardownSequence = [.gracefulShutDown(allowedDurationToNextStep: grace)]
                let environment = Dictionary(
                    uniqueKeysWithValues: run.environment.map { (Environment.Key(stringLiteral: $0.key), $0.value) })
                do {
                    let execution = try await Subprocess.run(
                        .path(FilePath(run.hook.command[0])), arguments: Arguments(Array(run.hook.command.dropFirst())),
                        environment: .custom(environment), platformOptions: platform, input: .none,
                        output: .sequence, error: .combinedWithOutput
                    ) { execution in
                        var lines = 0
                        for try await line in execution.standardOutput.strings() {
                            lines += 1
                            if lines <= limit {
                                logger.info(
                                    "hook output", metadata: ["hook": "\(name)", "line": "\(line.prefix(1000))"])
                            }
                        }
                        if lines > limit {
                            logger.info(
                                "hook output cut",
                                metadata: ["hook": "\(name)", "lines_not_logged": "\(lines - limit)"])
                        }
                    }
                    switch execution.terminationStatus {
                    case .exited(let code): return .exited(code)
                    case .signaled(let signal): return .signaled(signal)
                    }
                } catch is CancellationError {
                    return nil
                } catch {
                    return Task.isCancelled ? nil : .couldNotStart("\(error)")
                }
            }
            group.addTask {
                do {
                    try await Task.sleep(for: run.hook.timeout)
                } catch {
                    return nil  // Cancelled: the command ended first.
                }
                return .timedOut
            }
            let first = await group.next()!
            group.cancelAll()
            // The command's task ends only once the process is gone (after the teardown).
            while await group.next() != nil {}
            return first ?? .timedOut
        }
    }
}
