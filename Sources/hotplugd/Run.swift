import ArgumentParser
import Glibc
import HotplugCore
import HotplugDaemon
import HotplugSystem
import Logging
import ServiceLifecycle

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the daemon in the foreground.",
        discussion: """
            Devices present at start are handled by the same policy as hot-added ones (coldplug).

            Exit status: 0 after a clean stop (SIGTERM, SIGINT); 64 bad usage; 78 invalid configuration \
            (EX_CONFIG, which the unit does not restart on); 1 when the daemon cannot start (the reason is \
            logged).
            """)

    @OptionGroup var machine: MachineOptions

    @Option(help: "Where uevents come from: auto (udev when udevd runs, else kernel), udev or kernel.")
    var source: MonitorSource?

    @Flag(help: "Log what would be done and write nothing to sysfs.")
    var dryRun = false

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: Logger.Level = .info

    func run() async throws {
        let loaded = try machine.loadConfig()
        let level = logLevel
        // Under systemd, structured entries straight to the journal; elsewhere plain lines on stderr.
        let toJournal = Journal.isStandardErrorConnected
        LoggingSystem.bootstrap { label in
            var handler: any LogHandler =
                toJournal ? JournalLogHandler(label: label) : StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "hotplugd")
        if let error = MemoryLock.lockAll() {
            logger.warning(
                "cannot lock the daemon's memory; under memory pressure it may be paged out",
                metadata: ["error": "\(error)"])
        }
        var options = Daemon.Options(config: loaded)
        options.sysfsRoot = machine.sysfsRoot
        options.dryRun = dryRun
        options.source = source
        options.configPath = machine.config ?? (access(Config.defaultPath, F_OK) == 0 ? Config.defaultPath : nil)
        options.runtimeDirectory = machine.runtime
        if !machine.isThisMachine { options.kernelCommandLinePath = nil }
        options.intentStore = machine.store
        logger.info(
            "configuration",
            metadata: ["path": "\(options.configPath ?? "none: the defaults (no \(Config.defaultPath))")"])
        if (source ?? loaded.monitor.source) == .udev, machine.isThisMachine, !UdevMonitor.udevdRuns() {
            logger.warning(
                """
                monitor source is udev, but udevd is not running (nothing listens on /run/udev/control): no event reaches \
                hotplugd until it starts; source = "auto" listens to the kernel when udevd is not there
                """)
        }
        let group = ServiceGroup(
            configuration: .init(
                services: [.init(service: Daemon(options: options, logger: logger))],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger))
        try await group.run()
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}
