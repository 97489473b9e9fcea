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
        #expect(check.status == 1)
        #expect(check.stdout.contains("\(path):3: memory.online_type: \"fast\" is not one of"))
        let run = try Self.run(["run", "--dry-run", "--config", path])
        #expect(run.status == 78, "the daemon refuses to start, with EX_CONFIG")
        #expect(run.stderr.contains("\(path):3: memory.online_type"))
        #expect(!run.stderr.contains("listening"))
    }

    @Test func missingExplicitConfigIsAnError() throws {
        let output = try Self.run(["check-config", "/nonexistent/hotplugd.toml"])
        #expect(output.status == 1)
        #expect(output.stdout.contains("/nonexistent/hotplugd.toml: cannot read"))
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
}
