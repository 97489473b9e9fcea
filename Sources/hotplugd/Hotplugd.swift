import ArgumentParser
import HotplugCore

@main
struct Hotplugd: AsyncParsableCommand {
    // From the VERSION file (Plugins/VersionFromFile).
    static let version = packageVersion

    static let configuration = CommandConfiguration(
        commandName: "hotplugd",
        abstract: "Onlines hot-added CPUs and memory blocks according to a policy.",
        discussion: """
            Exit status, the same for every command: 0 done; 1 refused or failed, nothing left changed; \
            3 partly done; 64 bad usage; 78 invalid configuration (EX_CONFIG).
            """,
        version: version,
        subcommands: [Run.self, Status.self, Monitor.self, Offline.self, Online.self, CheckConfig.self]
    )
}

extension MonitorSource: ExpressibleByArgument {}
