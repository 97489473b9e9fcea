import Foundation
import Glibc
import HotplugCore
import HotplugFixtures
import HotplugSystem
import Testing

/// `hotplugd status` and `hotplugd monitor` asking the running daemon over its control socket.
/// The daemon runs on a fake tree and hears a real kernel uevent for this machine's cpu1: an
/// `offline` that it takes for somebody's, and monitor shows as it happens.
@Suite(.serialized) struct ControlSocketTests {
    @Test(
        .enabled(
            if: RealKernel.canTrigger && access("/sys/devices/system/cpu/cpu1/uevent", W_OK) == 0,
            "needs root and a cpu1"))
    func statusAndMonitorAskTheRunningDaemon() throws {
        let tree = try CLITests.machine()
        try tree.write("devices/system/cpu/cpu1/online", "0")
        // A block whose online write the "kernel" refuses: its state file is append-only (EPERM).
        try tree.addMemory(36, online: false, zones: "Normal Movable", dimm: "PNP0C80:01")
        let refusing = "\(tree.root)/devices/system/memory/memory36/state"
        let appendOnly = CLITests.canMakeAppendOnly
        if appendOnly { try CLITests.shell("chattr +a '\(refusing)'") }
        defer { if appendOnly { _ = try? CLITests.shell("chattr -a '\(refusing)'") } }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("hotplugd-control-\(UUID())").path
        try FileManager.default.createDirectory(atPath: "\(directory)/state", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let none = try CLITests.temporaryFile("")
        defer { unlink(none) }
        let machine = ["--sysfs-root", tree.root, "--runtime-directory", "\(directory)/run", "--config", none]

        let daemon = Process()
        daemon.executableURL = URL(fileURLWithPath: CLITests.binary)
        daemon.arguments = ["run", "--source", "kernel", "--state-directory", "\(directory)/state"] + machine
        daemon.standardError = FileHandle.nullDevice
        try daemon.run()
        defer { if daemon.isRunning { daemon.terminate() } }
        let deadline = Date().addingTimeInterval(60)
        while access("\(directory)/run/control", F_OK) != 0, Date() < deadline { usleep(20_000) }
        // The socket is there before the start-up scan ends, and a query is answered after it: one
        // status first, so that the write below cannot meet the scan's read of the same file (a
        // write truncates it first, and a scan that read it empty would leave cpu1 out).
        #expect(try CLITests.run(["status", "--json"] + machine).status == 0)
        // Coldplug onlined cpu1 at start; taken offline again behind its back, and no uevent:
        // sysfs says offline, the daemon still knows it as online.
        try tree.write("devices/system/cpu/cpu1/online", "0")
        let status = try CLITests.run(["status", "--json"] + machine)
        #expect(status.status == 0, "\(status.stderr)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any])
        #expect(report["source"] as? String == "daemon")
        let cpus = try #require(report["cpus"] as? [[String: Any]])
        #expect(cpus.first { $0["device"] as? String == "cpu1" }?["state"] as? String == "online", "the daemon's view")
        // A daemon answering does not make an invalid configuration file valid: EX_CONFIG, as for
        // every command.
        let bad = try CLITests.temporaryFile("[memory]\nonline_type = \"sideways\"\n")
        defer { unlink(bad) }
        let invalid = try CLITests.run(
            ["status", "--sysfs-root", tree.root, "--runtime-directory", "\(directory)/run", "--config", bad])
        #expect(invalid.status == 78 && invalid.stderr.contains("memory.online_type"), "\(invalid.stderr)")
        if appendOnly {
            let memory = try #require(report["memory"] as? [String: Any])
            let blocks = try #require(memory["blocks"] as? [[String: Any]])
            let refused = try #require(blocks.first { $0["device"] as? String == "memory36" })
            #expect(refused["state"] as? String == "blocked" && refused["errno"] as? Int == 1, "\(refused)")
            #expect((refused["since"] as? Int).map { abs($0 - Int(time(nil))) < 600 } == true, "\(refused)")
            let text = try CLITests.run(["status"] + machine)
            #expect(text.stdout.contains("memory36 blocked since "), "\(text.stdout)")
            #expect(text.stdout.contains("errno 1 (Operation not permitted)"), "\(text.stdout)")
        }

        let monitor = Process()
        monitor.executableURL = URL(fileURLWithPath: CLITests.binary)
        monitor.arguments = ["monitor"] + machine
        let out = Pipe()
        monitor.standardOutput = out
        try monitor.run()
        defer { if monitor.isRunning { monitor.terminate() } }
        let seen = Locked("")
        out.fileHandleForReading.readabilityHandler = { handle in
            let text = String(decoding: handle.availableData, as: UTF8.self)
            seen.withLock { $0 += text }
        }
        /// Each wait has its own minute: under ThreadSanitizer every step of the binary is slow.
        func wait(for text: String) {
            let deadline = Date().addingTimeInterval(60)
            while !seen.withLock({ $0.contains(text) }), Date() < deadline { usleep(20_000) }
        }
        wait(for: "following")
        // The real kernel's `offline` for cpu1, which the tree has offline now: somebody's offline.
        try RealKernel.trigger("offline", DeviceID(kind: .cpu, index: 1)!)
        wait(for: "offline cpu1")
        #expect(seen.withLock { $0 }.contains("offline cpu1"), "\(seen.withLock { $0 })")
        daemon.terminate()
        daemon.waitUntilExit()
        monitor.waitUntilExit()
        out.fileHandleForReading.readabilityHandler = nil
        #expect(monitor.terminationStatus == 0)
        #expect(seen.withLock { $0 }.contains("hotplugd stopped"), "\(seen.withLock { $0 })")

        // No daemon: status reads sysfs and says so.
        let alone = try CLITests.run(["status"] + machine)
        #expect(alone.status == 0)
        #expect(alone.stdout.contains("hotplugd is not running ("), "\(alone.stdout)")
        #expect(access("\(directory)/run/control", F_OK) != 0, "the socket is removed at stop")
    }
}
