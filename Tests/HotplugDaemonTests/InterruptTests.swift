import Foundation
import Glibc
import HotplugFixtures
import Testing

/// Ctrl-C, a real SIGINT, in the middle of `hotplugd offline`: the write in progress ends, and what
/// was taken offline is put back online before the command exits 130, with no intent left behind.
@Suite struct InterruptTests {
    @Test func sigintHalfWayPutsEveryBlockBackAndSaysSo() throws {
        let tree = try FakeSysfsTree()
        try tree.addCPU(0, online: nil)
        let blocks = 32..<48
        for index in blocks { try tree.addMemory(index, online: true, zones: "Movable", dimm: "PNP0C80:00") }
        let state = "\(tree.root)/state"
        let none = "\(tree.root)/none.toml"
        _ = FileManager.default.createFile(atPath: none, contents: nil)
        // Highest first: 47 to 41 go offline, then the write to memory40 is held in its open.
        let held = try HeldStateFile("\(tree.root)/devices/system/memory/memory40/state", value: "online")
        let command = try StormTests.RunningDaemon([
            "offline", "memory", "--range", "32-47", "--config", none, "--sysfs-root", tree.root,
            "--state-directory", state,
        ])
        let pid = command.process.processIdentifier
        try waitUntil(timeout: .seconds(30)) { held.serve(pid) || !command.process.isRunning }
        #expect(command.process.isRunning, "\(command.log)")
        #expect(tree.state("memory41") == "offline" && tree.state("memory39") == "online")
        #expect(kill(pid, SIGINT) == 0)
        usleep(200_000)
        #expect(command.process.isRunning, "the signal waits for the write in progress")
        // The write goes through; then memory40, the last taken offline, is the first put back.
        try held.releaseWriter()
        try waitUntil(timeout: .seconds(30)) {
            if held.serve(pid) {
                do {
                    try held.releaseWriter()
                } catch {
                    return true
                }
            }
            return !command.process.isRunning
        }
        command.process.waitUntilExit()
        #expect(command.process.terminationReason == .exit && command.process.terminationStatus == 130)
        // The held offline, then the put back (which may come through the same open, unseparated).
        #expect(held.written.joined() == "offlineonline_movable", "\(held.written)")
        for index in blocks where index != 40 {
            #expect(tree.state("memory\(index)") == (index > 40 ? "online_movable" : "online"), "memory\(index)")
        }
        let intent = (try? String(contentsOfFile: "\(state)/intent", encoding: .utf8)) ?? ""
        #expect(!intent.contains("memory"), "\(intent)")
        let said = command.log.joined(separator: "\n")
        #expect(said.contains("stopped by SIGINT before memory39"), "\(said)")
        #expect(
            said.contains("put back: memory40 memory41 memory42 memory43 memory44 memory45 memory46 memory47"),
            "\(said)")
    }
}
