import ArgumentParser
import HotplugCore

@main
struct Hotplugd: AsyncParsableCommand {
    static let version = "0.1.0"

    static let configuration = CommandConfiguration(
        commandName: "hotplugd",
        abstract: "Onlines hot-added CPUs and memory blocks according to a policy.",
        version: version,
        subcommands: [Run.self, Status.self, Offline.self, Online.self, CheckConfig.self]
    )
}

extension MonitorSource: ExpressibleByArgument {}
