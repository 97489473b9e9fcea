import ArgumentParser
import HotplugCore
import HotplugDaemon

/// The options of every command that reads the machine (`run`, `status`, `offline`, `online`),
/// and the rules that follow from them, the same for each.
struct MachineOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "The configuration file (default \(Config.defaultPath); the defaults apply when that does not exist).",
            valueName: "path"), completion: .file(extensions: ["toml"]))
    var config: String?

    @Option(
        help: ArgumentHelp(
            "The sysfs mount point. Another one is a test tree: /run/hotplugd and /proc/cmdline are not read.",
            valueName: "path"), completion: .directory)
    var sysfsRoot = "/sys"

    @Option(help: ArgumentHelp(stateDirectoryHelp, valueName: "directory"), completion: .directory)
    var stateDirectory: String?

    @Option(
        help: ArgumentHelp(
            "Where the daemon keeps its runtime files and its control socket, which status and monitor ask "
                + "(default /run/hotplugd; none with another --sysfs-root).",
            valueName: "directory"), completion: .directory)
    var runtimeDirectory: String?

    /// The runtime directory in force: the one named, else /run/hotplugd for this machine's sysfs.
    var runtime: String? { runtimeDirectory ?? (isThisMachine ? "/run/hotplugd" : nil) }

    /// Whether sysfs is this machine's: only then do the boot baseline in /run/hotplugd and
    /// /proc/cmdline describe the devices it shows.
    var isThisMachine: Bool { sysfsRoot == "/sys" }

    var store: IntentStore? { intentStore(stateDirectory, sysfsRoot: sysfsRoot) }

    /// The file named, or the default one if it exists, or the defaults.
    func loadConfig() throws(ExitCode) -> Config {
        try loadConfiguration(path: config ?? Config.defaultPath, required: config != nil)
    }
}

/// Loads a configuration file for any command. An invalid file, or a missing one that was named,
/// ends the command with EX_CONFIG and the file and line on standard error.
func loadConfiguration(path: String, required: Bool) throws(ExitCode) -> Config {
    do {
        return try ConfigLoader.load(path: path, required: required)
    } catch {
        // A file with several errors: all of them, one per line, in file order.
        let lines = "\(error)".split(separator: "\n")
        throw ExitStatus.config.reporting(
            lines.count == 1
                ? "invalid configuration: \(error)"
                : "invalid configuration, \(lines.count) errors:\n" + lines.map { "  \($0)" }.joined(separator: "\n"))
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
