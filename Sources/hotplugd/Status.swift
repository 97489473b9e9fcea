import ArgumentParser
import Foundation
import HotplugCore
import HotplugDaemon
import HotplugSystem
import Logging

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show every CPU and memory block: state, zone, node, DIMM, and what the policy would do.")

    @Flag(help: "Print JSON (schema in hotplugd(8)): cpus, memory ranges, totals and blocks.")
    var json = false

    @Option(help: "The sysfs mount point.")
    var sysfsRoot = "/sys"

    @Option(help: "The configuration whose policy is shown.")
    var config: String?

    @Option(help: ArgumentHelp(stateDirectoryHelp, valueName: "directory"))
    var stateDirectory: String?

    func run() throws {
        let loaded = try loadConfig(config)
        var options = DecisionCore.Options()
        options.dryRun = true
        options.bootKernelPages = BootBaseline(directory: "/run/hotplugd").load()
        let driver = CoreDriver(
            config: loaded, sysfs: try Sysfs(root: sysfsRoot), options: options,
            intentStore: intentStore(stateDirectory, sysfsRoot: sysfsRoot),
            logger: Logger(label: "hotplugd.status") { _ in SwiftLogNoOpLogHandler() })
        try driver.scanOnly()
        let report = StatusReport(devices: driver.core.status(), blockSizeBytes: driver.core.blockSizeBytes)
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
