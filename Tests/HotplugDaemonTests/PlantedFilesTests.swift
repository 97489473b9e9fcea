import Foundation
import Glibc
import HotplugFixtures
import Testing

/// The daemon, then `hotplugd offline`, with a FIFO, a link to a file outside, or a hard link to a
/// file outside planted at every name they write (the metrics file, the intent, the boot baseline,
/// the kernel-online record, and the `NAME.tmp` each had once): they start, serve and stop as
/// ever, hang on nothing, and the files outside keep their bytes and their mode.
@Suite struct PlantedFilesTests {
    enum Plant: CaseIterable { case fifo, symlink, hardLink }

    /// Each name gets each kind of plant in one of the three rotations.
    @Test(arguments: 0..<3) func nothingPlantedIsFollowedOpenedOrWaitedOn(rotation: Int) throws {
        let tree = try CLITests.machine()
        try tree.addMemoryHotplugParameters()
        let base = "\(tree.root)/files"
        let (state, runtime, metrics, outside) = ("\(base)/state", "\(base)/run", "\(base)/metrics", "\(base)/outside")
        for directory in [state, runtime, metrics, outside] {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        }
        let names = [
            "\(metrics)/hotplugd.prom", "\(state)/intent", "\(runtime)/boot-kernel-pages", "\(runtime)/kernel-online",
        ]
        .flatMap { [$0, "\($0).tmp"] }
        var targets: [String: [UInt8]] = [:]
        for (index, name) in names.enumerated() {
            let target = "\(outside)/precious-\(index)"
            targets[target] = Array("precious \(index)\n".utf8)
            try Data(targets[target]!).write(to: URL(fileURLWithPath: target))
            #expect(chmod(target, 0o600) == 0)
            switch Plant.allCases[(index + rotation) % 3] {
            case .fifo: #expect(mkfifo(name, 0o644) == 0)
            case .symlink: #expect(symlink(target, name) == 0)
            case .hardLink: #expect(link(target, name) == 0)
            }
        }
        let config = "\(base)/hotplugd.toml"
        try "[metrics]\ntextfile = \"\(metrics)/hotplugd.prom\"\n".write(
            toFile: config, atomically: false, encoding: .utf8)
        let machine = ["--config", config, "--sysfs-root", tree.root, "--state-directory", state]

        let daemon = try StormTests.RunningDaemon(
            ["run", "--source", "kernel", "--runtime-directory", runtime] + machine)
        try waitUntil(timeout: .seconds(30)) {
            daemon.log.contains { $0.contains("memory devices present") } || !daemon.process.isRunning
        }
        #expect(daemon.process.isRunning, "\(daemon.log)")
        // Serving: the metrics file and the boot baseline are its own now, whatever stood there.
        try waitUntil(timeout: .seconds(10)) { Self.isRegularFile("\(metrics)/hotplugd.prom") }
        #expect(Self.isRegularFile("\(runtime)/boot-kernel-pages"))
        #expect(
            (try? String(contentsOfFile: "\(runtime)/boot-kernel-pages", encoding: .utf8))?.hasPrefix("boot ") == true)
        // An intent file it cannot read whole keeps what is offline offline (none is, here).
        #expect(daemon.log.contains { $0.contains("cannot read the intent file whole") })
        let stopping = ContinuousClock().measure {
            daemon.process.terminate()
            daemon.process.waitUntilExit()
        }
        #expect(stopping < .seconds(5), "stopped in \(stopping)")
        #expect(daemon.process.terminationStatus == 0, "\(daemon.log)")
        // A clean stop put the kernel's settings back and removed the record.
        #expect(tree.read("devices/system/memory/auto_online_blocks") == "offline")
        #expect(access("\(runtime)/kernel-online", F_OK) != 0)

        // The command reads and writes the intent file with the same care.
        let command = try CLITests.run(["offline", "memory", "--range", "35"] + machine)
        #expect(command.status == 0, "\(command.stderr)")
        #expect(tree.state("memory35") == "offline")

        for (target, bytes) in targets {
            #expect(Array(FileManager.default.contents(atPath: target) ?? Data()) == bytes, "\(target)")
            var status = stat()
            #expect(stat(target, &status) == 0 && status.st_mode & 0o7777 == 0o600, "\(target)")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: outside).count == names.count)
    }

    static func isRegularFile(_ path: String) -> Bool {
        var status = stat()
        return lstat(path, &status) == 0 && status.st_mode & S_IFMT == S_IFREG && status.st_nlink == 1
    }
}
