import ArgumentParser
import HotplugCore
import Glibc
import HotplugDaemon
import HotplugSystem
import Logging
import ServiceLifecycle

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the daemon in the foreground.",
        discussion: "Devices present at start are handled by the same policy as hot-added ones (coldplug).")

    @Option(help: "The configuration file. Defaults apply when the default file does not exist.")
    var config: String?

    @Option(help: "Where uevents come from: auto (udev when udevd runs, else kernel), udev or kernel.")
    var source: MonitorSource?

    @Flag(help: "Log what would be done and write nothing to sysfs.")
    var dryRun = false

    @Option(help: "The sysfs mount point.")
    var sysfsRoot = "/sys"

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: Logger.Level = .info

    @Option(help: ArgumentHelp(stateDirectoryHelp, valueName: "directory"))
    var stateDirectory: String?

    func run() async throws {
        let loaded: Config
        do {
            loaded = try ConfigLoader.load(path: config ?? Config.defaultPath, required: config != nil)
        } catch {
            // EX_CONFIG, which the unit lists in RestartPreventExitStatus=: restarting cannot fix a file.
            printError("invalid configuration: \(error)")
            throw ExitCode(78)
        }
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
        options.sysfsRoot = sysfsRoot
        options.dryRun = dryRun
        options.source = source
        options.configPath = config ?? (access(Config.defaultPath, F_OK) == 0 ? Config.defaultPath : nil)
        if sysfsRoot != "/sys" { options.runtimeDirectory = nil }
        options.intentStore = intentStore(stateDirectory, sysfsRoot: sysfsRoot)
        let group = ServiceGroup(
            configuration: .init(
                services: [.init(service: Daemon(options: options, logger: logger))],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger))
        try await group.run()
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}

func printError(_ message: String) {
    var standardError = FileHandleOutputStream(fd: 2)
    print("hotplugd: \(message)", to: &standardError)
}

struct FileHandleOutputStream: TextOutputStream {
    let fd: Int32
    mutating func write(_ string: String) {
        var bytes = Array(string.utf8)
        _ = Glibc.write(fd, &bytes, bytes.count)
    }
}

let stateDirectoryHelp =
    "Where operator intent is kept (default \(IntentStore.defaultDirectory); none with another --sysfs-root)."

/// The intent store in `directory`, or in the default one when sysfs is the real one: a test
/// tree must never touch the machine's own intent.
func intentStore(_ directory: String?, sysfsRoot: String) -> IntentStore? {
    if let directory { return IntentStore(directory: directory) }
    return sysfsRoot == "/sys" ? IntentStore(directory: IntentStore.defaultDirectory) : nil
}

/// Loads the file at `path`, or the default file if it exists, or the defaults.
func loadConfig(_ path: String?) throws -> Config {
    do {
        return try ConfigLoader.load(path: path ?? Config.defaultPath, required: path != nil)
    } catch {
        throw ValidationError("invalid configuration: \(error)")
    }
}
