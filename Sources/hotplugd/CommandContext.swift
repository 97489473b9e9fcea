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
    /// What the core learned from the scan: status and the policy's answers.
    let engine: DecisionCore

    init(_ options: MachineOptions) throws {
        config = try options.loadConfig()
        store = options.store
        var kernelCommandLine: String? = ""
        var bootKernelPages: [Int: Int]?
        if options.isThisMachine {
            kernelCommandLine = Self.kernelCommandLine()
            do {
                bootKernelPages = try BootBaseline(directory: OwnDirectory("/run/hotplugd")).load()
            } catch {
                // Counted from what is online now, as the daemon does when it cannot read it.
                printError("warning: cannot read the boot memory baseline in /run/hotplugd: \(error)")
            }
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

    /// The core the commands ask about devices and the policy: the daemon's, in a dry run,
    /// after one scan, never started.
    static func scannedEngine(
        config: Config, sysfs: any SysfsAccess, intentStore: IntentStore?, kernelCommandLine: String?,
        bootKernelPages: [Int: Int]?
    ) throws(SysfsError) -> DecisionCore {
        var options = DecisionCore.Options()
        options.dryRun = true
        options.kernelCommandLine = kernelCommandLine
        options.bootKernelPages = bootKernelPages
        let driver = CoreDriver(
            config: config, sysfs: sysfs, options: options, intentStore: intentStore,
            logger: Logger(label: "hotplugd") { _ in SwiftLogNoOpLogHandler() })
        try driver.scanOnly()
        return driver.core
    }

    /// `/proc/cmdline`, for the `maxcpus=` rule of CPU coldplug; nil when unreadable (no /proc in
    /// a container), which the core takes as "CPU coldplug under auto is off", as the daemon does
    /// and says.
    private static func kernelCommandLine() -> String? {
        do {
            return try TextFile.read("/proc/cmdline")
        } catch {
            printError("warning: cannot read /proc/cmdline (\(error)): CPU coldplug under auto is taken as off")
            return nil
        }
    }
}
