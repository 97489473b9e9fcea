import HotplugFixtures
import Foundation
import Testing

/// The `hotplugd` binary as an operator runs it.
@Suite struct CLITests {
    /// The binary built beside the test bundle.
    static let binary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        .appendingPathComponent("hotplugd").path

    struct Output {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// Runs the binary; with `terminateAfter`, sends SIGTERM once standard error has shown that text.
    static func run(_ arguments: [String], terminateAfter: String? = nil) throws -> Output {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        var stderr = Data()
        if let terminateAfter {
            let deadline = Date().addingTimeInterval(30)
            while !String(decoding: stderr, as: UTF8.self).contains(terminateAfter), Date() < deadline {
                let chunk = err.fileHandleForReading.availableData
                if chunk.isEmpty { break }
                stderr += chunk
            }
            process.terminate()
        }
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        stderr += err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Output(
            status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
            stderr: String(decoding: stderr, as: UTF8.self))
    }

    static func temporaryFile(_ text: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("hotplugd-\(UUID().uuidString).toml").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func checkConfigAcceptsTheShippedFile() throws {
        let shipped = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("config/hotplugd.toml").path
        let output = try Self.run(["check-config", shipped])
        #expect(output.status == 0)
        #expect(output.stdout.contains("memory.online_type = auto-movable"))
    }

    @Test func badConfigIsRejectedWithKeyAndLine() throws {
        let path = try Self.temporaryFile("[memory]\n\nonline_type = \"fast\"\n")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let check = try Self.run(["check-config", path])
        #expect(check.status == 78)
        #expect(check.stderr.contains("hotplugd: invalid configuration: \(path):3: memory.online_type: \"fast\" is not one of"))
        #expect(check.stdout.isEmpty)
        let run = try Self.run(["run", "--dry-run", "--config", path])
        #expect(run.status == 78, "the daemon refuses to start, with EX_CONFIG")
        #expect(run.stderr.contains("hotplugd: invalid configuration: \(path):3: memory.online_type"))
        #expect(!run.stderr.contains("listening"))
    }

    @Test func missingExplicitConfigIsAnError() throws {
        let output = try Self.run(["check-config", "/nonexistent/hotplugd.toml"])
        #expect(output.status == 78)
        #expect(output.stderr.contains("/nonexistent/hotplugd.toml: cannot read"))
    }

    @Test func versionAndUnknownOptions() throws {
        #expect(try Self.run(["--version"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "0.1.0")
        let bad = try Self.run(["run", "--source", "carrier-pigeon"])
        #expect(bad.status != 0)
        #expect(bad.stderr.contains("carrier-pigeon"))
    }

    @Test(.enabled(if: RealKernel.canTrigger, "needs root"))
    func dryRunListsThisMachineAndStopsOnSIGTERM() throws {
        let output = try Self.run(["run", "--dry-run", "--source", "kernel"], terminateAfter: "memory devices present")
        #expect(output.status == 0, "SIGTERM is a clean stop")
        #expect(output.stderr.contains("listening for uevents"))
        #expect(output.stderr.contains("cpu devices present"))
        #expect(output.stderr.contains("memory devices present"))
        #expect(output.stderr.contains("stopping"))
    }

    @Test(.enabled(if: RealKernel.canTrigger, "needs root"))
    func statusShowsThisMachine() throws {
        let table = try Self.run(["status"])
        #expect(table.status == 0)
        #expect(table.stdout.hasPrefix("CPU"))
        #expect(table.stdout.contains("RANGE"))
        #expect(table.stdout.contains("Total online memory:"))
        let json = try Self.run(["status", "--json"])
        let report = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        #expect(report?["schema_version"] as? Int == 1)
        let memory = report?["memory"] as? [String: Any]
        let blocks = memory?["blocks"] as? [[String: Any]]
        #expect(blocks?.contains { $0["device"] as? String == "memory0" && $0["state"] as? String == "online" } == true)
        #expect(memory?["block_size_bytes"] as? Int == 128 << 20)
        let cpus = report?["cpus"] as? [[String: Any]]
        #expect(cpus?.first?["device"] as? String == "cpu0")
    }

    @Test func offlineRecordsIntentThatStatusShowsAndOnlineClears() throws {
        let tree = try FakeSysfsTree()
        try tree.addCPU(0, online: nil)
        for index in 1...3 { try tree.addCPU(index, online: true) }
        let common = ["--sysfs-root", tree.root, "--state-directory", "\(tree.root)/state"]
        let offline = try Self.run(["offline", "cpu", "2-3"] + common)
        #expect(offline.status == 0, "\(offline.stderr)")
        #expect(tree.state("cpu3") == "0")
        let intent = try String(contentsOfFile: "\(tree.root)/state/intent", encoding: .utf8)
        #expect(intent.contains("\ncpu2 command ") && intent.contains("\ncpu3 command "))

        let status = try Self.run(["status", "--json"] + common)
        let report = try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any]
        let cpu2 = (report?["cpus"] as? [[String: Any]])?.first { $0["device"] as? String == "cpu2" }
        #expect((cpu2?["intent"] as? [String: Any])?["origin"] as? String == "command")
        #expect((cpu2?["policy"] as? String)?.hasPrefix("leave offline: taken offline by hotplugd offline at ") == true)

        let online = try Self.run(["online", "cpu", "3"] + common)
        #expect(online.status == 0, "\(online.stderr)")
        let after = try String(contentsOfFile: "\(tree.root)/state/intent", encoding: .utf8)
        #expect(after.contains("\ncpu2 command ") && !after.contains("cpu3"))
    }

    /// Bad input of every kind: a clear message and a non-zero exit, never a crash (a crash
    /// exits by a signal, 128 and up). Each row: arguments, file contents for `FILE`, status, message.
    @Test(arguments: [
        (["offline", "cpu", "abc"], nil, 1, "\"abc\" in CPU list \"abc\" is not a number or a range"),
        (["offline", "cpu", "99999999999999999999"], nil, 1, "is not a number or a range"),
        (["offline", "memory"], nil, 64, "give exactly one of --dimm, --node, --range"),
        (["offline", "memory", "--range", "5-x"], nil, 64, "--range must be A-B or A"),
        (["online", "cpu", "2", "--timeout", "0"], nil, 64, "--timeout must be 1...86400 seconds"),
        (["status", "--sysfs-root", "/nonexistent"], nil, 1, "/nonexistent/devices/system: No such file or directory"),
        (["run", "--log-level", "loud"], nil, 64, "The value 'loud' is invalid for '--log-level <log-level>'"),
        (["check-config", "/dev/zero"], nil, 78, "/dev/zero: cannot read: File too large"),
        (["check-config", "FILE"], "[cpu]\n[!memory]\n", 78, ":2: a table header must start with a key, not '!'"),
        (["check-config", "FILE"], "[cpu]\ninclude = \"0-3\"\r\n# caf\u{E9}\n", 0, "cpu.include = 0-3"),
        (["check-config", "FILE"], "[memory]\nauto_movable_ratio = -1\n", 78, ":2: memory.auto_movable_ratio: -1 is outside"),
        (["check-config", "FILE"], "[[hook]]\ncommand = [\"relative\"]\n", 78, "is not an absolute path"),
        (["run", "--dry-run", "--config", "FILE"], "[monitor]\nsource = \"carrier-pigeon\"\n", 78, ":2: monitor.source"),
    ] as [([String], String?, Int32, String)])
    func badInputIsAClearErrorNeverACrash(arguments: [String], file: String?, status: Int32, message: String) throws {
        let path = try file.map(Self.temporaryFile)
        defer { if let path { try? FileManager.default.removeItem(atPath: path) } }
        let output = try Self.run(arguments.map { $0 == "FILE" ? path! : $0 })
        #expect(output.status == status, "\(output.stdout)\(output.stderr)")
        #expect((output.stdout + output.stderr).contains(message), "\(output.stdout)\(output.stderr)")
    }

    @Test func aConfigFileWithABrokenByteNamesItsLine() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("hotplugd-\(UUID().uuidString).toml").path
        let bytes = Array("[cpu]\nauto_online = true\ninclude = \"0-3".utf8) + [0xFF] + Array("\"\n".utf8)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let output = try Self.run(["check-config", path])
        #expect(output.status == 78)
        #expect(output.stderr.contains("\(path):3: not valid UTF-8"), "\(output.stderr)")
    }
}
