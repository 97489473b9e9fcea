import HotplugCore
import Logging

/// Where the core's results go on the async side: device changes to the hook runner, online
/// writes and device counts to the metrics file.
///
/// The metrics file is rewritten at most once per `metricsInterval`: a burst of 64 blocks is one
/// write, and a change at the end of a burst is written by the flush the daemon schedules. The
/// text is made here and written by a `MetricsWriter` on its own thread: a hung filesystem
/// delays the file, never the daemon.
final class DaemonOutputs {
    let hooks: HookRunner
    let metrics: DaemonMetrics?
    let logger: Logger
    var metricsInterval: Duration = .seconds(1)
    let writer: MetricsWriter?
    private var lastWrite: ContinuousClock.Instant?
    private var unwritten = false
    private var snapshot: CoreSnapshot?

    /// `writeLimit`: how long a metrics write may take before it is logged, and how long a stop
    /// waits for the last one.
    init(
        hooks: HookRunner, metrics: DaemonMetrics?, writeLimit: Duration = .seconds(5), logger: Logger
    ) throws(DaemonError) {
        self.hooks = hooks
        self.metrics = metrics
        self.logger = logger
        writer = try metrics.map { metrics throws(DaemonError) in
            try MetricsWriter(path: metrics.path, limit: writeLimit, logger: logger) { try metrics.write($0) }
        }
    }

    deinit {
        // After a start that failed, nothing called `stop`: the writer's thread ends all the same.
        writer?.stop { _ in }
    }

    /// Hands on what the core did. Returns when the metrics file should next be written, if a
    /// write is due but too early.
    func publish(
        changes: [DeviceChange], operations: [OnlineOperation], snapshot: CoreSnapshot?,
        now: ContinuousClock.Instant = .now
    ) async -> ContinuousClock.Instant? {
        if !changes.isEmpty { await hooks.submit(changes) }
        if let snapshot { self.snapshot = snapshot }
        guard let metrics else { return nil }
        metrics.record(operations)
        unwritten = true
        return writeMetrics(now: now)
    }

    /// Marks the metrics as changed outside the core (a hook ran).
    func touch() {
        unwritten = true
    }

    /// Hands the metrics file's text to the writer if something changed and the interval has
    /// passed; otherwise returns when to try again.
    func writeMetrics(now: ContinuousClock.Instant = .now, force: Bool = false) -> ContinuousClock.Instant? {
        guard let metrics, let writer, unwritten || lastWrite == nil || force else { return nil }
        if !force, let lastWrite, now - lastWrite < metricsInterval { return lastWrite + metricsInterval }
        if let snapshot { metrics.update(from: snapshot) }
        writer.submit(metrics.text)
        lastWrite = now
        unwritten = false
        return nil
    }

    /// Writes the metrics a last time and waits for the writer, at most its time limit.
    func stop() async {
        _ = writeMetrics(force: true)
        await writer?.stop()
    }
}
