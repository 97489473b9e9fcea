import HotplugCore
import Logging

/// Where the core's results go on the async side: device changes to the hook runner, online
/// writes and device counts to the metrics file.
///
/// The metrics file is rewritten at most once per `metricsInterval`: a burst of 64 blocks is one
/// write, and a change at the end of a burst is written by the flush the daemon schedules.
final class DaemonOutputs {
    let hooks: HookRunner
    let metrics: DaemonMetrics?
    let logger: Logger
    var metricsInterval: Duration = .seconds(1)
    private var lastWrite: ContinuousClock.Instant?
    private var unwritten = false
    private var lastError: String?
    private var snapshot: CoreSnapshot?

    init(hooks: HookRunner, metrics: DaemonMetrics?, logger: Logger) {
        self.hooks = hooks
        self.metrics = metrics
        self.logger = logger
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

    /// Writes the metrics file if something changed and the interval has passed; otherwise
    /// returns when to try again.
    func writeMetrics(now: ContinuousClock.Instant = .now, force: Bool = false) -> ContinuousClock.Instant? {
        guard let metrics, unwritten || lastWrite == nil || force else { return nil }
        if !force, let lastWrite, now - lastWrite < metricsInterval { return lastWrite + metricsInterval }
        if let snapshot { metrics.update(from: snapshot) }
        do {
            try metrics.write(metrics.text)
            if lastError != nil { logger.notice("metrics file written again", metadata: ["path": "\(metrics.path)"]) }
            lastError = nil
        } catch {
            // Once per distinct error, not once per second.
            if lastError != "\(error)" {
                logger.error(
                    "cannot write the metrics file", metadata: ["path": "\(metrics.path)", "error": "\(error)"])
            }
            lastError = "\(error)"
        }
        lastWrite = now
        unwritten = false
        return nil
    }
}
