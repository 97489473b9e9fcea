import Foundation
import HotplugCore
import Testing

@testable import HotplugDaemon

/// The Prometheus text file, from what the core did on the fake tree.
extension CoreDriverTests {
    @Test func metricsCountEventsOperationsDevicesAndZones() throws {
        let engine = engine(intentStore: store)
        try engine.start()
        let metrics = DaemonMetrics(path: "\(tree.root)/hotplugd.prom")
        try tree.addCPU(2, online: false)
        for index in 16..<24 { try tree.addMemory(index, dimm: "PNP0C80:00") }
        // Only the DIMM's first block announced: the others are found, and timed, all the same.
        let batch = [Self.event("add", "cpu2"), Self.event("frobnicate", "cpu2"), Self.event("add", "memory16")]
        metrics.received(batch)
        engine.handle(batch)
        try tree.write("devices/system/cpu/cpu1/online", "0")
        engine.handle([Self.event("offline", "cpu1")])
        metrics.record(engine.takeOperations())
        metrics.eventsLost()
        metrics.update(from: engine.core.snapshot())
        try metrics.write(metrics.text)

        let text = try String(contentsOfFile: metrics.path, encoding: .utf8)
        let lines = Set(text.split(separator: "\n").map(String.init))
        for expected in [
            #"hotplugd_uevents_total{action="add"} 2"#,
            #"hotplugd_uevents_total{action="invalid"} 1"#,
            #"hotplugd_uevent_overflows_total 1"#,
            #"hotplugd_online_operations_total{kind="cpu",result="succeeded"} 1"#,
            #"hotplugd_online_operations_total{kind="memory",result="succeeded"} 8"#,
            #"hotplugd_time_to_online_seconds_count{kind="memory"} 8"#,
            #"hotplugd_devices{kind="cpu",state="online"} 2.0"#,
            #"hotplugd_devices{kind="cpu",state="offline"} 1.0"#,
            #"hotplugd_devices{kind="memory",state="online"} 12.0"#,
            #"hotplugd_devices{kind="memory",state="failed"} 0.0"#,
            #"hotplugd_memory_blocks_online{zone="Movable",node="0"} 8.0"#,
            #"hotplugd_memory_blocks_online{zone="DMA32",node="0"} 3.0"#,
            #"hotplugd_devices_kept_offline 1.0"#,
            #"hotplugd_block_size_bytes 134217728.0"#,
            "# HELP hotplugd_online_operations_total Writes to online attributes, by device kind and result.",
        ] {
            #expect(lines.contains(expected), "missing \(expected) in:\n\(text)")
        }
        #expect(!FileManager.default.fileExists(atPath: metrics.path + ".tmp"))
    }

    @Test func aZoneWithoutOnlineBlocksReadsZero() throws {
        let engine = engine()
        try engine.start()
        let metrics = DaemonMetrics(path: "\(tree.root)/hotplugd.prom")
        try tree.addMemory(16, dimm: "PNP0C80:00")
        engine.handle([Self.event("add", "memory16")])
        metrics.update(from: engine.core.snapshot())
        #expect(metrics.text.contains(#"hotplugd_memory_blocks_online{zone="Movable",node="0"} 1.0"#))
        try tree.write("devices/system/memory/memory16/state", "offline")
        try tree.remove("memory16")
        engine.handle([Self.event("offline", "memory16"), Self.event("remove", "memory16")])
        metrics.update(from: engine.core.snapshot())
        #expect(metrics.text.contains(#"hotplugd_memory_blocks_online{zone="Movable",node="0"} 0.0"#))
    }

    @Test func anUnwritableMetricsFileIsLoggedOnce() async throws {
        let engine = engine()
        try engine.start()
        let outputs = try DaemonOutputs(
            hooks: HookRunner(hooks: [], logger: log.logger()),
            metrics: DaemonMetrics(path: "\(tree.root)/no-such-directory/hotplugd.prom"), logger: log.logger())
        outputs.metricsInterval = .zero
        for _ in 0..<3 {
            outputs.touch()
            _ = await outputs.publish(changes: [], operations: [], snapshot: engine.core.snapshot())
            // Three writes, not one: each has failed before the next is handed over.
            while outputs.writer?.isBusy == true { try await Task.sleep(for: .milliseconds(1)) }
        }
        await outputs.stop()
        #expect(log.count("cannot write the metrics file") == 1)
    }
}
