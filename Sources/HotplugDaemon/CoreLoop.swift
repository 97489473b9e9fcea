import HotplugCore
import HotplugSystem
import Logging

/// The daemon's event loop, on a thread of its own: takes inputs from the queue one at a time,
/// runs them through the core (`CoreDriver`), and hands on what came of each as a `Publication`.
///
/// Nothing here waits on anything but the queue and sysfs; hooks and the metrics file are the
/// async side's. The watchdog watches the driver's heartbeat from outside, and stop reaches the
/// loop through the queue, ahead of anything queued.
///
/// The monitor holds memory bursts until the kernel has stopped sending, which events depending
/// on who onlines memory (`UdevMonitor.holdMemoryBursts`): the loop says so at start and whenever
/// that changes.
final class CoreLoop: @unchecked Sendable {
    /// What the async side hears from the loop.
    enum Publication: Sendable {
        /// The start-up scan and coldplug are done. Coldplug's changes and writes come with it:
        /// left for the next input, their hooks and metrics would wait for whatever happens next.
        case started(changes: [DeviceChange], operations: [OnlineOperation], snapshot: CoreSnapshot)
        /// What one input led to. The snapshot is taken when the queue is empty or a second has passed.
        case progress(changes: [DeviceChange], operations: [OnlineOperation], snapshot: CoreSnapshot?)
        /// Time to write the metrics file, or a hook ended.
        case flush
        /// The loop cannot go on.
        case failed(String)
    }

    let driver: CoreDriver
    let queue: InputQueue
    let metrics: DaemonMetrics?
    let logger: Logger
    let publish: AsyncStream<Publication>.Continuation
    /// Run on the loop's thread once the start-up scan is done (baseline, conflict warnings).
    let afterStart: @Sendable (CoreDriver) -> Void
    /// Hears every burst of device changes as the loop takes it (`hotplugd monitor`).
    var control: ControlServer?
    /// Told whether the kernel onlines memory, at start and whenever that changes.
    var onliningChanged: (@Sendable (_ kernelOnlinesMemory: Bool) -> Void)?

    init(
        driver: CoreDriver, queue: InputQueue, metrics: DaemonMetrics?, logger: Logger,
        publish: AsyncStream<Publication>.Continuation, afterStart: @escaping @Sendable (CoreDriver) -> Void
    ) {
        self.driver = driver
        self.queue = queue
        self.metrics = metrics
        self.logger = logger
        self.publish = publish
        self.afterStart = afterStart
    }

    func run() {
        defer { publish.finish() }
        do {
            try driver.start()
        } catch {
            publish.yield(.failed("start-up scan: \(error)"))
            return
        }
        afterStart(driver)
        publish.yield(
            .started(
                changes: driver.takeChanges(), operations: driver.takeOperations(), snapshot: driver.core.snapshot()))
        var lastSnapshot = ContinuousClock.now
        var mergedLosses = 0
        /// Whether something changed since the last snapshot.
        var unshown = false
        var droppedEvents = 0
        var toldKernelOnlines: Bool?
        defer { driver.sayHeldTransitions() }
        while true {
            if driver.kernelOnlinesMemory != toldKernelOnlines {
                toldKernelOnlines = driver.kernelOnlinesMemory
                onliningChanged?(driver.kernelOnlinesMemory)
            }
            if let due = driver.logDeadline, due <= .now { driver.sayHeldTransitions() }
            let item = queue.next(deadline: [driver.nextDeadline, driver.logDeadline].compactMap { $0 }.min())
            switch item {
            case .events(let batch):
                metrics?.received(batch)
                let rejected = driver.handle(batch)
                metrics?.rejected(stage: "decode", count: rejected)
            case .refused(let reason):
                metrics?.rejected(stage: "datagram")
                driver.refused(reason)
            case .eventsLost:
                // Losses while this rescan was queued were merged into it; they are said here.
                let counters = queue.counters
                logger.warning(
                    "uevents were lost (ENOBUFS, or the queue was full); rescanning sysfs",
                    metadata: [
                        "kind": "\(LogKind.eventsLost.rawValue)", "merged": "\(counters.mergedLosses - mergedLosses)",
                        "dropped_by_queue": "\(counters.droppedEvents - droppedEvents)",
                    ])
                mergedLosses = counters.mergedLosses
                droppedEvents = counters.droppedEvents
                metrics?.eventsLost()
                let started = ContinuousClock.now
                driver.eventsLost()
                logger.info("rescan finished", metadata: ["seconds": "\(ContinuousClock.now - started)"])
            case .reconfigure(let config):
                driver.update(config: config)
            case .deadline:
                driver.tick()
            case .query(let query):
                query.body(driver)
            case .failed(let reason):
                publish.yield(.failed("uevent monitor: \(reason)"))
                return
            case .stop:
                return
            }
            // Counting every device costs the machine's size: after a burst that changed something,
            // or once a second, not after every input (a DIMM waiting for its link ticks every 5 ms).
            let changes = driver.takeChanges()
            let operations = driver.takeOperations()
            control?.broadcast(changes)
            var snapshot: CoreSnapshot?
            unshown = unshown || !changes.isEmpty || !operations.isEmpty
            if (unshown && queue.isEmpty) || ContinuousClock.now - lastSnapshot >= .seconds(1) {
                snapshot = driver.core.snapshot()
                lastSnapshot = .now
                unshown = false
            }
            publish.yield(.progress(changes: changes, operations: operations, snapshot: snapshot))
        }
    }
}
