import ArgumentParser
import Foundation
import HotplugCore
import HotplugDaemon

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show every CPU and memory block: state, zone, node, DIMM, and what the policy would do.",
        discussion: "Exit status: 0 shown; 1 sysfs cannot be read; 64 bad usage; 78 invalid configuration.")

    @Flag(help: "Print JSON (schema in hotplugd(8)): cpus, memory ranges, totals and blocks.")
    var json = false

    @OptionGroup var machine: MachineOptions

    func run() throws {
        let context = try CommandContext(machine)
        let engine = context.engine
        var report = StatusReport(devices: engine.status(), blockSizeBytes: engine.blockSizeBytes)
        report.memoryOnlining = MemoryOnliningStatus(
            plan: MemoryOnlining.plan(context.config.memory, kernel: context.sysfs.kernelOnlineSupport()),
            sysfs: context.sysfs)
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            encoder.keyEncodingStrategy = .convertToSnakeCase
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
        } else {
            print(report.text)
        }
    }
}
