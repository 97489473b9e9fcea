import HotplugCore
import HotplugSystem
import Prometheus

/// The daemon's counters and gauges, written in Prometheus text format to a file that
/// node_exporter's textfile collector picks up (`[metrics] textfile`).
///
/// swift-prometheus's registry is used directly rather than through swift-metrics' global
/// `MetricsSystem`: hotplugd is the only producer, the bootstrap is once per process (tests start
/// many daemons), and only the registry's own API carries the `# HELP` text.
public final class DaemonMetrics: Sendable {
    public let path: String
    /// The file's directory, held for the process, and its name there.
    let directory: OwnDirectory
    let name: String
    let registry = PrometheusCollectorRegistry()
    private let gaugeLabels = Locked<[String: Set<[String]>]>([:])

    static let timeBuckets: [Duration] = [
        .milliseconds(10), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
        .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10), .seconds(30),
    ]

    public init(path: String) {
        self.path = path
        let slash = path.lastIndex(of: "/")
        directory = OwnDirectory(slash.map { $0 == path.startIndex ? "/" : String(path[..<$0]) } ?? ".")
        name = slash.map { String(path[path.index(after: $0)...]) } ?? path
    }

    private func name(_ metric: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "hotplugd", metricName: metric, unitName: unit, helpText: help)
    }

    /// Uevents received, by action (`invalid` for what the decoder will reject as unknown).
    public func received(_ batch: [RawUevent]) {
        var counts: [String: Int64] = [:]
        for event in batch {
            counts[event.action.flatMap { UeventAction(rawValue: $0)?.rawValue } ?? "invalid", default: 0] += 1
        }
        for (action, count) in counts {
            registry.makeCounter(
                descriptor: name("uevents", "total", "Uevents received for CPUs and memory blocks, by action."),
                labels: [("action", action)]
            ).increment(by: count)
        }
    }

    /// Uevents refused: `datagram` before parsing (forged sender, malformed), `decode` after.
    public func rejected(stage: String, count: Int = 1) {
        guard count > 0 else { return }
        registry.makeCounter(
            descriptor: name("uevents_rejected", "total", "Uevents refused as forged or malformed, by stage."),
            labels: [("stage", stage)]
        ).increment(by: Int64(count))
    }

    public func eventsLost() {
        registry.makeCounter(
            descriptor: name(
                "uevent_overflows", "total", "Times the kernel dropped uevents (ENOBUFS) and sysfs was rescanned."),
            labels: []
        ).increment()
    }

    /// Online writes by kind and result, and the time from `add` to online.
    public func record(_ operations: [OnlineOperation]) {
        for operation in operations {
            let kind = operation.device.kind.rawValue
            if operation.byKernel {
                registry.makeCounter(
                    descriptor: name(
                        "kernel_onlined", "total",
                        "Memory blocks the kernel onlined inside their add, with hotplugd's policy (kernel_online)."),
                    labels: [("kind", kind)]
                ).increment()
                continue
            }
            let result =
                switch operation.outcome {
                case .succeeded: "succeeded"
                case .blocked: "blocked"
                case .gone: "gone"
                case .failed: "failed"
                }
            registry.makeCounter(
                descriptor: name(
                    "online_operations", "total", "Writes to online attributes, by device kind and result."),
                labels: [("kind", kind), ("result", result)]
            ).increment()
            if operation.outcome == .succeeded, let time = operation.sinceAdded {
                registry.makeDurationHistogram(
                    descriptor: name(
                        "time_to_online", "seconds", "From a device's add uevent to its online write's end."),
                    labels: [("kind", kind)], buckets: Self.timeBuckets
                ).record(time)
            }
        }
    }

    /// Hook runs by hook and result.
    public func hookRan(_ run: HookRun, result: HookRunner.Result) {
        registry.makeCounter(
            descriptor: name("hook_runs", "total", "Hook command runs, by hook and result."),
            labels: [("hook", run.hook.name), ("result", result.label)]
        ).increment()
    }

    /// Devices by kind and state, online memory blocks by zone and node, devices kept offline.
    public func update(from snapshot: CoreSnapshot) {
        let counts = snapshot.deviceCounts
        for kind in DeviceKind.allCases {
            for state in DeviceState.allCases where state != .absent && state != .removed {
                setGauge(
                    name("devices", "", "Present CPUs and memory blocks, by kind and state."),
                    labels: [("kind", kind.rawValue), ("state", state.rawValue)], to: counts[kind]?[state] ?? 0)
            }
        }
        let descriptor = name("memory_blocks_online", "", "Online memory blocks, by zone and node.")
        let blocks = snapshot.onlineBlocksByZone
        var present = Set<[String]>()
        for (key, count) in blocks {
            present.insert([key.zone, key.node])
            setGauge(descriptor, labels: [("zone", key.zone), ("node", key.node)], to: count)
        }
        // A zone that has no online block any more reads 0, not its last count.
        let gone = gaugeLabels.withLock { seen in
            defer { seen[descriptor.name, default: []].formUnion(present) }
            return seen[descriptor.name, default: []].subtracting(present)
        }
        for labels in gone { setGauge(descriptor, labels: [("zone", labels[0]), ("node", labels[1])], to: 0) }
        setGauge(
            name(
                "devices_kept_offline", "", "Devices kept offline because somebody took them offline (operator intent)."
            ),
            labels: [], to: snapshot.keptOffline)
        setGauge(
            name("block_size", "bytes", "The memory block size."), labels: [], to: snapshot.blockSizeBytes)
    }

    private func setGauge(_ descriptor: MetricNameDescriptor, labels: [(String, String)], to value: Int) {
        registry.makeGauge(descriptor: descriptor, labels: labels).set(Double(value))
    }

    /// The text node_exporter reads.
    public var text: String { registry.emitToString() }

    /// Replaces the file with `text` atomically (a temporary file beside it, renamed over it):
    /// the collector never reads half a file, and it ignores the temporary one, which does not
    /// end in `.prom`. The directory is not made: node_exporter's is somebody else's.
    public func write(_ text: String) throws {
        try directory.write(name, text, create: false)
    }
}
