import ArgumentParser
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
        print("monitor.source = \(config.monitor.source.rawValue)")
        print("monitor.receive_buffer_bytes = \(config.monitor.receiveBufferBytes)")
        print("cpu.auto_online = \(config.cpu.autoOnline)")
        print("cpu.include = \(config.cpu.include)")
        print("cpu.exclude = \(config.cpu.exclude)")
        print("cpu.coldplug = \(config.cpu.coldplug.rawValue)")
        print("memory.auto_online = \(config.memory.autoOnline)")
        print("memory.online_type = \(config.memory.onlineType.rawValue)")
        print("memory.auto_movable_ratio = \(config.memory.autoMovableRatio)")
        print("memory.auto_movable_numa_aware = \(config.memory.autoMovableNUMAAware)")
        print("memory.coldplug = \(config.memory.coldplug.rawValue)")
        print("memory.kernel_online = \(config.memory.kernelOnline)")
        for rule in config.memory.nodes {
            let type = rule.onlineType?.rawValue ?? "(inherited)"
            let auto = rule.autoOnline.map { "\($0)" } ?? "(inherited)"
            print("memory.node \(rule.node): auto_online = \(auto), online_type = \(type)")
        }
        // On this machine's kernel: a file checked elsewhere says what it would do there.
        do {
            let sysfs = try Sysfs()
            let plan = MemoryOnlining.plan(config.memory, kernel: sysfs.kernelOnlineSupport())
            print("memory onlining on this kernel: \(plan.summary)")
        } catch {
            print("memory onlining on this kernel: unknown (\(error))")
        }
    }
}
