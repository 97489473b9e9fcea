import ArgumentParser
import Foundation
import HotplugCore
import HotplugDaemon
import HotplugSystem
import Logging

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show every CPU and memory block: state, zone, node, DIMM, and what the policy would do.")

    @Flag(help: "Print JSON: an array of objects with device, kind, index, state, zone, node, dimm, policy.")
    var json = false

    @Option(help: "The sysfs mount point.")
    var sysfsRoot = "/sys"

    @Option(help: "The configuration whose policy is shown.")
    var config: String?

    func run() throws {
        let loaded = try loadConfig(config)
        var options = Engine.Options()
        options.dryRun = true
        options.kernelCommandLine = (try? TextFile.read("/proc/cmdline")) ?? ""
        options.bootKernelPages = BootBaseline(directory: "/run/hotplugd").load()
        let engine = Engine(
            config: loaded, sysfs: try Sysfs(root: sysfsRoot), options: options,
            logger: Logger(label: "hotplugd.status") { _ in SwiftLogNoOpLogHandler() })
        try engine.scanOnly()
        let devices = engine.status()
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(devices), as: UTF8.self))
            return
        }
        let header = ["DEVICE", "STATE", "ZONE", "NODE", "DIMM", "POLICY"]
        let rows = devices.map {
            [$0.device, $0.state.rawValue, $0.zone ?? "-", $0.node.map(String.init) ?? "-", $0.dimm ?? "-",
             $0.policy ?? "-"]
        }
        let widths = header.indices.map { column in ([header] + rows).map { $0[column].count }.max()! }
        for row in [header] + rows {
            print(row.indices.map { row[$0].padding(toLength: widths[$0], withPad: " ", startingAt: 0) }
                .joined(separator: "  ").trimmingCharacters(in: .whitespaces))
        }
    }
}
