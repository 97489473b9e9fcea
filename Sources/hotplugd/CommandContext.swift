import HotplugCore
import HotplugDaemon
import HotplugSystem
import Logging

/// Where `status`, `offline` and `online` start, all the same way: the configuration (invalid:
/// EX_CONFIG, as for `run`), sysfs, the intent store, what is known from boot (only about this
/// machine's sysfs, as for `run`), and every device scanned once.
struct CommandContext {
    let config: Config
    let sysfs: Sysfs
    let store: IntentStore?
    let engine: Engine

    init(_ options: MachineOptions) throws {
        config = try options.loadConfig()
        store = options.store
        var kernelCommandLine = ""
        var bootKernelPages: [Int: Int]?
        if options.isThisMachine {
            kernelCommandLine = Self.kernelCommandLine()
            bootKernelPages = BootBaseline(directory: "/run/hotplugd").load()
        }
        do {
            sysfs = try Sysfs(root: options.sysfsRoot)
            engine = try Self.scannedEngine(
                config: config, sysfs: sysfs, intentStore: store, kernelCommandLine: kernelCommandLine,
                bootKernelPages: bootKernelPages)
        } catch {
            throw ExitStatus.failed.reporting("cannot read sysfs: \(error)")
        }
    }

    /// The engine the commands ask about devices and the policy: a dry run, scanned, never started.
    static func scannedEngine(
        config: Config, sysfs: any SysfsAccess, intentStore: IntentStore?, kernelCommandLine: String,
        bootKernelPages: [Int: Int]?
    ) throws(SysfsError) -> Engine {
        var options = Engine.Options()
        options.dryRun = true
        options.kernelCommandLine = kernelCommandLine
        options.bootKernelPages = bootKernelPages
        let engine = Engine(
            config: config, sysfs: sysfs, options: options, intentStore: intentStore,
            logger: Logger(label: "hotplugd") { _ in SwiftLogNoOpLogHandler() })
        try engine.scanOnly()
        return engine
    }

    /// `/proc/cmdline`, for the `maxcpus=` rule of CPU coldplug. Without /proc (a container) it is
    /// empty, as for the daemon: the rule then finds no limit.
    private static func kernelCommandLine() -> String {
        do {
            return try TextFile.read("/proc/cmdline")
        } catch {
            return ""
        }
    }
}
