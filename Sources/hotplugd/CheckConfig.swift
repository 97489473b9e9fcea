import ArgumentParser
import Foundation
import HotplugCore
import HotplugDaemon
import HotplugSystem

struct CheckConfig: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config",
        abstract: "Check a configuration file and print the settings it results in.",
        discussion: """
            An invalid file, or one that cannot be read, is reported on standard error with its line, \
            and the exit status is 78 (EX_CONFIG), as for run, status, offline and online.
            """)

    @Argument(help: "The file to check.", completion: .file(extensions: ["toml"]))
    var path: String = Config.defaultPath

    func run() throws {
        let config = try loadConfiguration(path: path, required: true)
        print("\(path): ok")
        for line in config.listing { print(line) }
        // On this machine's kernel: a file checked elsewhere says what it would do there.
        do {
            let sysfs = try Sysfs()
            let plan = MemoryOnlining.plan(config.memory, kernel: sysfs.kernelOnlineSupport())
            print("memory onlining on this kernel: \(plan.summary)")
        } catch {
            print("memory onlining on this kernel: unknown (\(error))")
        }
        for warning in Self.warnings(config) {
            FileHandle.standardError.write("\(path): warning: \(warning)\n")
        }
    }

    /// What is valid but likely wrong on this machine.
    static func warnings(_ config: Config) -> [String] {
        var warnings: [String] = []
        for hook in config.hooks {
            guard let command = hook.command.first else { continue }
            var status = stat()
            if stat(command, &status) != 0 {
                warnings.append("hook \(hook.name): \(command) does not exist (\(String(cString: strerror(errno))))")
            } else if status.st_mode & S_IFMT != S_IFREG || access(command, X_OK) != 0 {
                warnings.append("hook \(hook.name): \(command) is not an executable file")
            }
        }
        if !config.memory.nodes.isEmpty {
            var present = Set<Int>()
            do {
                present = Set(
                    try FileManager.default.contentsOfDirectory(atPath: "/sys/devices/system/node")
                        .compactMap { $0.hasPrefix("node") ? Int($0.dropFirst(4)) : nil })
            } catch {
                // A kernel without NUMA has no node directory: nothing to compare the rules with.
            }
            for rule in config.memory.nodes where !present.isEmpty && !present.contains(rule.node) {
                warnings.append(
                    "memory.node \(rule.node): this machine has no node \(rule.node) "
                        + "(it has \(present.sorted().map(String.init).joined(separator: ", ")))")
            }
        }
        if config.monitor.source == .udev && !UdevMonitor.udevdRuns() {
            warnings.append("monitor.source = udev, but udevd is not running here: hotplugd would hear no events")
        }
        if let textfile = config.metrics.textfile {
            let directory = (textfile as NSString).deletingLastPathComponent
            var status = stat()
            if stat(directory, &status) != 0 || status.st_mode & S_IFMT != S_IFDIR {
                warnings.append("metrics.textfile: the directory \(directory) does not exist")
            }
        }
        return warnings
    }
}

extension FileHandle {
    fileprivate func write(_ text: String) { write(Data(text.utf8)) }
}
