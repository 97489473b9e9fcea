import Foundation
import Glibc
import HotplugFixtures
import Testing

/// `hotplugd offline` records the operator's intent, durably, before the sysfs write it is about:
/// a command killed at that write leaves the entry, so the daemon takes the offline that may
/// follow as intended.
@Suite struct IntentOrderTests {
    /// Block 35 of `CLITests.machine()`, the DIMM's highest, taken offline alone.
    static func offline(_ tree: FakeSysfsTree, state: String) -> [String] {
        // An empty configuration: whatever this host has in /etc/hotplugd does not count.
        let none = "\(tree.root)/none.toml"
        _ = FileManager.default.createFile(atPath: none, contents: nil)
        return [
            "offline", "memory", "--range", "35", "--config", none, "--sysfs-root", tree.root,
            "--state-directory", state,
        ]
    }

    @Test func aCommandKilledInItsSysfsWriteLeavesTheIntentEntry() throws {
        let tree = try CLITests.machine()
        let state = "\(tree.root)/state"
        let held = try HeldStateFile(
            "\(tree.root)/devices/system/memory/memory35/state", value: "online")
        let command = try StormTests.RunningDaemon(Self.offline(tree, state: state))
        let pid = command.process.processIdentifier
        try waitUntil(timeout: .seconds(30)) { held.serve(pid) || !command.process.isRunning }
        #expect(command.process.isRunning, "\(command.log)")
        // Held in the open of memory35/state: nothing written to it yet. Killed there:
        kill(pid, SIGKILL)
        command.process.waitUntilExit()
        #expect(command.process.terminationReason == .uncaughtSignal && command.process.terminationStatus == SIGKILL)
        #expect(held.written.isEmpty)
        let intent = try String(contentsOfFile: "\(state)/intent", encoding: .utf8)
        #expect(intent.contains("\nmemory35 command "), "\(intent)")
    }

    /// The system calls in order: the new intent file synced, renamed over `intent`, the directory
    /// synced, and only then memory35's state opened for writing.
    @Test(.enabled(if: access("/usr/bin/strace", X_OK) == 0, "needs /usr/bin/strace"))
    func theIntentIsSyncedBeforeTheSysfsWrite() throws {
        let tree = try CLITests.machine()
        let trace = FileManager.default.temporaryDirectory.appendingPathComponent("hotplugd-\(UUID()).trace").path
        defer { unlink(trace) }
        let output = try CLITests.run(
            [
                // LeakSanitizer cannot run under ptrace; in an AddressSanitizer build it would fail the command.
                "ASAN_OPTIONS=detect_leaks=0", "/usr/bin/strace",
                "-f", "-o", trace, "-e", "trace=fsync,fdatasync,openat,openat2,renameat,renameat2,write",
                CLITests.binary,
            ] + Self.offline(tree, state: "\(tree.root)/state"), executable: "/usr/bin/env")
        #expect(output.status == 0, "\(output.stderr)")
        #expect(tree.state("memory35") == "offline")
        let calls = Self.calls(try String(contentsOfFile: trace, encoding: .utf8))
        func first(after start: Int, _ matches: (String) -> Bool) -> Int? {
            calls.indices.first { $0 > start && matches(calls[$0]) }
        }
        func fd(of call: String) -> String { String(call.split(separator: "= ").last ?? "") }
        let created = try #require(
            first(after: -1) { $0.hasPrefix("openat(") && $0.contains("\".intent.") },
            "\(calls.filter { $0.contains("intent") }.joined(separator: "\n"))")
        let file = fd(of: calls[created])
        let directory = String(calls[created].dropFirst("openat(".count).prefix { $0 != "," })
        let fileSynced = try #require(first(after: created) { $0.hasPrefix("fsync(\(file))") })
        let renamed = try #require(first(after: fileSynced) { $0.hasPrefix("rename") && $0.contains("\"intent\"") })
        let directorySynced = try #require(first(after: renamed) { $0.hasPrefix("fsync(\(directory))") })
        let stateOpened = try #require(
            calls.indices.first {
                calls[$0].hasPrefix("openat") && calls[$0].contains("state\"") && calls[$0].contains("O_WRONLY")
            },
            "\(calls.joined(separator: "\n"))")
        #expect(
            directorySynced < stateOpened,
            "memory35's state opened at call \(stateOpened), the intent directory synced at \(directorySynced)")
    }

    /// strace -f's lines, "PID call(args) = result", as "call(args) = result" in the order the calls
    /// began: a call another thread's interrupted ("PID call(args <unfinished ...>", later
    /// "PID <... call resumed>rest") is put together where it began.
    static func calls(_ trace: String) -> [String] {
        var calls: [String] = []
        var unfinished: [Substring: Int] = [:]
        for line in trace.split(separator: "\n") {
            let pid = line.prefix { $0 != " " }
            let call = line.drop { $0 != " " }.drop { $0 == " " }  // Padded to a width.
            if let start = call.range(of: " <unfinished ...>") {
                unfinished[pid] = calls.count
                calls.append(String(call[..<start.lowerBound]))
            } else if call.hasPrefix("<..."), let resumed = call.range(of: " resumed>"), let index = unfinished[pid] {
                calls[index] += call[resumed.upperBound...]
                unfinished[pid] = nil
            } else {
                calls.append(String(call))
            }
        }
        return calls
    }
}
