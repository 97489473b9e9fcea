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
        // An invalid configuration is EX_CONFIG for every command, whether or not a daemon answers.
        _ = try machine.loadConfig()
        var report: StatusReport
        var note: String?
        switch machine.runtime.map({ ControlClient.connect(directory: $0) }) {
        case .success(var client):
            // The daemon's own view: blocked, failed and onlining states, intent, who onlines memory.
            do {
                report = try client.status()
            } catch {
                note = "the daemon did not answer (\(error)): states read from sysfs"
                report = try Self.fromSysfs(machine)
            }
        case .failure(let error):
            note = "hotplugd is not running (\(error)): states as sysfs shows them now"
            report = try Self.fromSysfs(machine)
        case nil:
            report = try Self.fromSysfs(machine)
        }
        if json {
            print(String(decoding: try report.json(pretty: true), as: UTF8.self))
        } else {
            print(report.text)
            if let note { print("\n(\(note))") }
        }
    }

    /// The report from a scan of sysfs, as a daemon starting now would see the machine.
    static func fromSysfs(_ machine: MachineOptions) throws -> StatusReport {
        let context = try CommandContext(machine)
        let engine = context.engine
        var report = StatusReport(devices: engine.status(), blockSizeBytes: engine.blockSizeBytes)
        report.memoryOnlining = MemoryOnliningStatus(
            plan: MemoryOnlining.plan(context.config.memory, kernel: context.sysfs.kernelOnlineSupport()),
            sysfs: context.sysfs)
        report.source = "sysfs"
        return report
    }
}
