import Foundation
import Glibc
import HotplugFixtures
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
    static func run(_ arguments: [String], terminateAfter: String? = nil, executable: String = binary) throws -> Output
    {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
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
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("hotplugd-\(UUID().uuidString).toml")
            .path
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

    @Test func checkConfigShowsEverythingAndWarnsOfWhatIsLikelyWrong() throws {
        let path = try Self.temporaryFile(
            """
            [monitor]
            source = "udev"
            [[memory.node]]
            node = 999
            online_type = "online_movable"
            [[hook]]
            command = ["/nonexistent/hook"]
            [[hook]]
            command = ["/etc/passwd"]
            on = ["add", "online"]
            devices = "memory"
            [metrics]
            textfile = "/nonexistent/dir/hotplugd.prom"
            """)
        defer { unlink(path) }
        let output = try Self.run(["check-config", path])
        #expect(output.status == 0, "warnings are not errors")
        for line in [
            "metrics.textfile = /nonexistent/dir/hotplugd.prom", "cpu.enforce = false", "memory.dax = leave",
            "memory.node[999].auto_online = true (from [memory])", "memory.node[999].online_type = online_movable",
            "hook[0].command = \"/nonexistent/hook\"", "hook[1].on = add online", "hook[1].devices = memory",
            "hook[1].timeout_seconds = 30",
        ] {
            #expect(output.stdout.contains("\n\(line)\n"), "\(line) in \(output.stdout)")
        }
        #expect(output.stderr.contains("warning: hook hook: /nonexistent/hook does not exist"))
        #expect(output.stderr.contains("warning: hook passwd: /etc/passwd is not an executable file"))
        #expect(output.stderr.contains("warning: memory.node 999: this machine has no node 999"))
        #expect(output.stderr.contains("warning: metrics.textfile: the directory /nonexistent/dir does not exist"))
        let udevd = access("/run/udev/control", F_OK) == 0
        #expect(output.stderr.contains("udevd is not running here") == !udevd)
    }

    @Test func badConfigIsRejectedWithKeyAndLine() throws {
        let path = try Self.temporaryFile("[memory]\n\nonline_type = \"fast\"\n")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let check = try Self.run(["check-config", path])
        #expect(check.status == 78)
        #expect(
            check.stderr.contains(
                "hotplugd: invalid configuration: \(path):3: memory.online_type: \"fast\" is not one of"))
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

    /// What bash's completion offers for `line` (its last word is completed), with the script
    /// the binary generates loaded as bash loads it.
    static func bashCompletions(_ line: [String]) throws -> [String] {
        let script = try run(["--generate-completion-script", "bash"])
        let file = try temporaryFile(script.stdout)
        defer { unlink(file) }
        let words = line.map { "'\($0)'" }.joined(separator: " ")
        let shell = """
            source \(file)
            COMP_WORDS=(\(words)); COMP_CWORD=\(line.count - 1); COMP_LINE="${COMP_WORDS[*]}"; COMP_POINT=${#COMP_LINE}
            _hotplugd hotplugd "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
            printf '%s\\n' "${COMPREPLY[@]}"
            """
        let output = try run(["-c", shell], executable: "/bin/bash")
        #expect(output.status == 0, "\(output.stderr)")
        return output.stdout.split(separator: "\n").map(String.init)
    }

    @Test func bashCompletesPathsAndValues() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("hotplugd-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try "".write(to: directory.appendingPathComponent("hotplugd.toml"), atomically: false, encoding: .utf8)
        try "".write(to: directory.appendingPathComponent("notes.txt"), atomically: false, encoding: .utf8)
        let prefix = directory.path + "/"
        #expect(try Self.bashCompletions(["hotplugd", "check-config", prefix]).contains(prefix + "hotplugd.toml"))
        #expect(try !Self.bashCompletions(["hotplugd", "check-config", prefix]).contains(prefix + "notes.txt"))
        #expect(
            try Self.bashCompletions(["hotplugd", "status", "--config", prefix]).contains(prefix + "hotplugd.toml"))
        #expect(try Self.bashCompletions(["hotplugd", "run", "--sysfs-root", "/sy"]).contains("/sys"))
        #expect(
            try Self.bashCompletions(["hotplugd", "online", "memory", "--type", "online_"])
                == ["online_kernel", "online_movable"])
        #expect(try Self.bashCompletions(["hotplugd", "run", "--log-level", "w"]) == ["warning"])
        #expect(try Self.bashCompletions(["hotplugd", "run", "--source", "u"]) == ["udev"])
    }

    /// What fish's completion offers for `line`, with the generated script sourced: fish
    /// completes a command line on request (`complete -C`).
    static func fishCompletions(_ line: String) throws -> [String] {
        let script = try temporaryFile(try run(["--generate-completion-script", "fish"]).stdout)
        defer { unlink(script) }
        let output = try run(["-c", "source \(script); complete -C '\(line)'"], executable: "/usr/bin/fish")
        #expect(output.status == 0, "\(output.stderr)")
        return output.stdout.split(separator: "\n").map { String($0.prefix { $0 != "\t" }) }
    }

    /// What zsh shows after `line` and a Tab at an interactive prompt (driven through a pseudo
    /// terminal, zsh/zpty) with compinit and the generated script loaded; waits until `expected`
    /// shows or 30 s pass.
    static func zshCompletionScreen(_ line: String, expected: String) throws -> String {
        let script = try temporaryFile(try run(["--generate-completion-script", "zsh"]).stdout)
        let driver = try temporaryFile(
            """
            zmodload zsh/zpty
            zpty z zsh -f -i
            zpty -w z "PS1=''; autoload -U compinit && compinit -u -d $2.zcompdump; source $2"
            zpty -n -w z "$1"$'\\t'
            out=""
            for i in {1..60}; do
              while zpty -r -t z chunk; do out+=$chunk; done
              [[ $out == *$3* ]] && break
              sleep 0.5
            done
            print -r -- "$out"
            zpty -d z
            """)
        defer { for file in [script, driver, script + ".zcompdump"] { unlink(file) } }
        let output = try run(["-f", driver, line, script, expected], executable: "/usr/bin/zsh")
        return output.stdout
    }

    @Test(.enabled(if: access("/usr/bin/fish", X_OK) == 0, "needs fish"))
    func fishCompletesPathsAndValues() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("hotplugd-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try "".write(to: directory.appendingPathComponent("hotplugd.toml"), atomically: false, encoding: .utf8)
        let prefix = directory.path + "/"
        #expect(try Self.fishCompletions("hotplugd check-config \(prefix)") == [prefix + "hotplugd.toml"])
        #expect(try Self.fishCompletions("hotplugd status --config \(prefix)") == [prefix + "hotplugd.toml"])
        #expect(
            try Self.fishCompletions("hotplugd online memory --type online_") == ["online_kernel", "online_movable"])
    }

    @Test(.enabled(if: access("/usr/bin/zsh", X_OK) == 0, "needs zsh"))
    func zshCompletesPathsAndValues() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("hotplugd-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try "".write(to: directory.appendingPathComponent("hotplugd.toml"), atomically: false, encoding: .utf8)
        let prefix = directory.path + "/"
        // The only candidate is put on the line.
        let path = "hotplugd check-config \(prefix)hotplugd.toml"
        #expect(try Self.zshCompletionScreen("hotplugd check-config \(prefix)", expected: path).contains(path))
        // Two candidates are listed under the line.
        let screen = try Self.zshCompletionScreen("hotplugd online memory --type online_", expected: "online_movable")
        #expect(screen.contains("online_kernel") && screen.contains("online_movable"), "\(screen)")
    }

    @Test func versionAndUnknownOptions() throws {
        // The one version, from the VERSION file at the top of the repository.
        let versionFile = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("VERSION")
        let version = try String(contentsOf: versionFile, encoding: .utf8).trimmingCharacters(
            in: .whitespacesAndNewlines)
        #expect(try Self.run(["--version"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines) == version)
        let bad = try Self.run(["run", "--source", "carrier-pigeon"])
        #expect(bad.status != 0)
        #expect(bad.stderr.contains("carrier-pigeon"))
    }

    @Test(.enabled(if: RealKernel.canTrigger, "needs root"))
    func dryRunListsThisMachineAndStopsOnSIGTERM() throws {
        // A metrics file is configured: a dry run writes no file at all, that one included.
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("hotplugd-dry-\(UUID())").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let config = "\(directory)/hotplugd.toml"
        try "[metrics]\ntextfile = \"\(directory)/hotplugd.prom\"\n".write(
            toFile: config, atomically: false, encoding: .utf8)
        let output = try Self.run(
            ["run", "--dry-run", "--source", "kernel", "--config", config], terminateAfter: "memory devices present")
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory) == ["hotplugd.toml"])
        #expect(output.status == 0, "SIGTERM is a clean stop")
        #expect(output.stderr.contains("listening for uevents"))
        #expect(output.stderr.contains("cpu devices present"))
        #expect(output.stderr.contains("memory devices present"))
        #expect(output.stderr.contains("stopping"))
        // The file in force is named, and the socket buffer beside what was asked (the kernel doubles it).
        #expect(output.stderr.contains("path=\(config) [hotplugd] configuration"))
        #expect(output.stderr.contains("receive_buffer_bytes=134217728 socket_buffer_bytes="))
        // Told to listen to udevd where none runs: said at start.
        let udev = try Self.run(
            ["run", "--dry-run", "--source", "udev", "--config", config], terminateAfter: "listening for uevents")
        let udevd = access("/run/udev/control", F_OK) == 0
        #expect(udev.stderr.contains("but udevd is not running") == !udevd, "\(udev.stderr)")
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
        #expect(intent.contains("\ncpu2-3 command "), "\(intent)")

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
    @Test(
        arguments: [
            (["offline", "cpu", "abc"], nil, 64, "\"abc\" in CPU list \"abc\" is not a number or a range"),
            (["offline", "cpu", "99999999999999999999"], nil, 64, "is not a number or a range"),
            (["online", "cpu", "7-3"], nil, 64, "CPU range 7-3 is reversed"),
            (["offline", "memory"], nil, 64, "give exactly one of --dimm, --node, --range"),
            (
                ["offline", "memory", "--range", "5-x"], nil, 64,
                "--range must be block numbers (A-B or A), addresses as status shows them"
            ),
            (["offline", "memory", "--range", "0x100000000-40"], nil, 64, "--range must be block numbers"),
            (["offline", "memory", "--range", "0x1ffffffffffffffff"], nil, 64, "--range must be block numbers"),
            (["online", "cpu", "2", "--timeout", "0"], nil, 64, "--timeout must be 1...86400 seconds"),
            (
                ["status", "--sysfs-root", "/nonexistent"], nil, 1,
                "/nonexistent/devices/system: No such file or directory"
            ),
            (["run", "--log-level", "loud"], nil, 64, "The value 'loud' is invalid for '--log-level <log-level>'"),
            (
                ["monitor", "--runtime-directory", "/nonexistent"], nil, 1,
                "hotplugd is not running (/nonexistent/control"
            ),
            (["check-config", "/dev/zero"], nil, 78, "/dev/zero: cannot read: File too large"),
            (["check-config", "FILE"], "[cpu]\n[!memory]\n", 78, ":2: a table header must start with a key, not '!'"),
            (["check-config", "FILE"], "[cpu]\ninclude = \"0-3\"\r\n# caf\u{E9}\n", 0, "cpu.include = 0-3"),
            (
                ["check-config", "FILE"], "[memory]\nauto_movable_ratio = -1\n", 78,
                ":2: memory.auto_movable_ratio: -1 is outside"
            ),
            (["check-config", "FILE"], "[[hook]]\ncommand = [\"relative\"]\n", 78, "is not an absolute path"),
            (
                ["run", "--dry-run", "--config", "FILE"], "[monitor]\nsource = \"carrier-pigeon\"\n", 78,
                ":2: monitor.source"
            ),
        ] as [([String], String?, Int32, String)])
    func badInputIsAClearErrorNeverACrash(arguments: [String], file: String?, status: Int32, message: String) throws {
        let path = try file.map(Self.temporaryFile)
        defer { if let path { try? FileManager.default.removeItem(atPath: path) } }
        let output = try Self.run(arguments.map { $0 == "FILE" ? path! : $0 })
        #expect(output.status == status, "\(output.stdout)\(output.stderr)")
        #expect((output.stdout + output.stderr).contains(message), "\(output.stdout)\(output.stderr)")
    }

    @Test func aNodeOfBootMemoryOnlySaysWhyNothingMatches() throws {
        let tree = try Self.machine()
        for index in 8..<10 { try tree.addMemory(index, online: true, zones: "Normal", node: 1) }
        let none = try Self.temporaryFile("")
        defer { unlink(none) }
        let output = try Self.run(["offline", "memory", "--node", "1", "--sysfs-root", tree.root, "--config", none])
        #expect(output.status == 64)
        #expect(
            output.stderr.contains(
                "--node 1: its 2 memory blocks are boot memory, of no DIMM, which --node leaves out"),
            "\(output.stderr)")
    }

    @Test func aConfigFileWithABrokenByteNamesItsLine() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("hotplugd-\(UUID().uuidString).toml")
            .path
        let bytes = Array("[cpu]\nauto_online = true\ninclude = \"0-3".utf8) + [0xFF] + Array("\"\n".utf8)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let output = try Self.run(["check-config", path])
        #expect(output.status == 78)
        #expect(output.stderr.contains("\(path):3: not valid UTF-8"), "\(output.stderr)")
    }

    /// A fake machine for the commands: CPUs 0 (no online file, like the real cpu0) to 3 online;
    /// boot memory, blocks 0-7, online in Normal; a DIMM, PNP0C80:00, blocks 32-35 online in
    /// Movable, at 0x100000000-0x11fffffff with 128 MiB blocks.
    static func machine() throws -> FakeSysfsTree {
        let tree = try FakeSysfsTree()
        try tree.addCPU(0, online: nil)
        for cpu in 1...3 { try tree.addCPU(cpu, online: true) }
        for index in 0..<8 { try tree.addMemory(index, online: true, zones: "Normal") }
        for index in 32..<36 { try tree.addMemory(index, online: true, zones: "Movable", dimm: "PNP0C80:00") }
        return tree
    }

    static let devices = ["cpu1", "cpu2", "cpu3"] + (0..<8).map { "memory\($0)" } + (32..<36).map { "memory\($0)" }

    /// One exit status per kind of outcome, whichever command meets it (hotplugd(8), EXIT STATUS).
    /// Each row runs the binary on a fresh `machine()`; in the arguments <root> is its sysfs root,
    /// <bad> a configuration with an error on line 3, <none> an empty one (so that whatever this
    /// host has in /etc/hotplugd does not count). Each row: arguments, status, and what standard
    /// error (standard output for 0) says.
    @Test(
        arguments: [
            // 78: an invalid configuration, the same for every command, before anything is read.
            (
                ["run", "--dry-run", "--config", "<bad>", "--sysfs-root", "<root>"], 78,
                "invalid configuration: <bad>:3: memory.online_type"
            ),
            (
                ["status", "--config", "<bad>", "--sysfs-root", "<root>"], 78,
                "invalid configuration: <bad>:3: memory.online_type"
            ),
            (
                ["offline", "cpu", "3", "--config", "<bad>", "--sysfs-root", "<root>"], 78,
                "invalid configuration: <bad>:3:"
            ),
            (
                ["online", "memory", "--dimm", "PNP0C80:00", "--config", "<bad>", "--sysfs-root", "<root>"], 78,
                "invalid configuration: <bad>:3:"
            ),
            (["check-config", "<bad>"], 78, "invalid configuration: <bad>:3: memory.online_type"),
            (
                ["status", "--config", "/nonexistent/hotplugd.toml", "--sysfs-root", "<root>"], 78,
                "/nonexistent/hotplugd.toml: cannot read"
            ),
            // 64: the command line is wrong, whether that shows before or after sysfs is read.
            (["offline", "cpu", "abc", "--sysfs-root", "<root>"], 64, "\"abc\" in CPU list"),
            (["offline", "memory", "--range", "9-2", "--sysfs-root", "<root>"], 64, "--range 9-2 is reversed"),
            (
                [
                    "offline", "memory", "--range", "0x120000000-0x11fffffff", "--config", "<none>", "--sysfs-root",
                    "<root>",
                ], 64,
                "--range 0x120000000-0x11fffffff is reversed"
            ),
            (
                [
                    "offline", "memory", "--range", "0x100000000-0x11ffffff0", "--config", "<none>", "--sysfs-root",
                    "<root>",
                ], 64,
                "addresses must be whole memory blocks of 0x8000000 bytes"
            ),
            (["offline", "cpu", "2-5", "--config", "<none>", "--sysfs-root", "<root>"], 64, "no such CPU: 4-5"),
            (
                ["online", "memory", "--dimm", "PNP0C80:09", "--config", "<none>", "--sysfs-root", "<root>"], 64,
                "no memory block matches --dimm PNP0C80:09"
            ),
            // 1: refused, nothing written.
            (
                ["offline", "cpu", "all", "--config", "<none>", "--sysfs-root", "<root>"], 1,
                "refused: cpu0: has no online attribute"
            ),
            (
                ["offline", "memory", "--range", "0-7", "--config", "<none>", "--sysfs-root", "<root>"], 1,
                "memory7: in zone Normal"
            ),
            (
                ["status", "--config", "<none>", "--sysfs-root", "<root>/nonexistent"], 1,
                "cannot read sysfs: open <root>/nonexistent/devices/system"
            ),
            // 0: done; the DIMM by the addresses status prints for it.
            (
                [
                    "offline", "memory", "--range", "0x0000000100000000-0x000000011fffffff", "--config", "<none>",
                    "--sysfs-root", "<root>",
                ], 0,
                "memory35: offline\nmemory34: offline\nmemory33: offline\nmemory32: offline\n"
            ),
            (
                ["offline", "cpu", "2", "3", "--config", "<none>", "--sysfs-root", "<root>"], 0,
                "cpu3: offline\ncpu2: offline\n"
            ),
            // A start address and a size, as chmem takes sizes: the same DIMM.
            (
                ["offline", "memory", "--range", "0x100000000+512M", "--config", "<none>", "--sysfs-root", "<root>"],
                0, "memory35: offline\nmemory34: offline\nmemory33: offline\nmemory32: offline\n"
            ),
            (
                ["offline", "memory", "--range", "0x100000000+0", "--config", "<none>", "--sysfs-root", "<root>"],
                64, "or a start address and a size (0x100000000+2G; K, M, G, T)"
            ),
            // Commands say what is already so, and what --node leaves out.
            (
                ["online", "memory", "--dimm", "PNP0C80:00", "--config", "<none>", "--sysfs-root", "<root>"], 0,
                "nothing to do: memory32-35 are online already"
            ),
            (
                ["online", "cpu", "1", "--config", "<none>", "--sysfs-root", "<root>"], 0,
                "nothing to do: cpu1 is online already"
            ),
            (
                ["offline", "memory", "--node", "0", "--config", "<none>", "--sysfs-root", "<root>"], 0,
                "note: --node 0 leaves out its 8 blocks of boot memory (of no DIMM, not hot-pluggable)"
            ),
            (["status", "--config", "<none>", "--sysfs-root", "<root>"], 0, "0x0000000100000000-0x000000011fffffff"),
            (["check-config", "<none>"], 0, "<none>: ok"),
        ] as [([String], Int32, String)])
    func exitStatus(arguments: [String], status: Int32, message: String) throws {
        let tree = try Self.machine()
        let bad = try Self.temporaryFile("[memory]\n\nonline_type = \"fast\"\n")
        let none = try Self.temporaryFile("")
        defer { for path in [bad, none] { try? FileManager.default.removeItem(atPath: path) } }
        func substitute(_ text: String) -> String {
            text.replacingOccurrences(of: "<root>", with: tree.root).replacingOccurrences(of: "<bad>", with: bad)
                .replacingOccurrences(of: "<none>", with: none)
        }
        let output = try Self.run(arguments.map(substitute))
        #expect(output.status == status, "\(output.stdout)\(output.stderr)")
        #expect(
            (status == 0 ? output.stdout : output.stderr).contains(substitute(message)),
            "\(output.stdout)\(output.stderr)")
        if status != 0 {
            #expect(Self.devices.allSatisfy { ["1", "online"].contains(tree.state($0)) }, "nothing left changed")
        }
    }

    /// 3: the DIMM's second block refuses, and the first cannot be put back. A tree of plain files
    /// refuses nothing, so two of the kernel's refusals are stood in for: memory34's state is
    /// append-only (chattr +a: writing it fails with EPERM), and the command runs with a file size
    /// limit of 10 bytes, so that writing `offline` (7 bytes) goes through and putting back
    /// `online_movable` (14) is cut short, which the write path reports as EIO.
    @Test(.enabled(if: canMakeAppendOnly, "needs root (CAP_LINUX_IMMUTABLE), chattr and prlimit"))
    func partlyDoneIsThree() throws {
        let tree = try Self.machine()
        let none = try Self.temporaryFile("")
        let state = "\(tree.root)/devices/system/memory/memory34/state"
        try Self.shell("chattr +a '\(state)'")
        defer {
            _ = try? Self.shell("chattr -a '\(state)'")
            try? FileManager.default.removeItem(atPath: none)
        }
        let output = try Self.run(
            [
                "--fsize=10", Self.binary, "offline", "memory", "--dimm", "PNP0C80:00", "--config", none,
                "--sysfs-root", tree.root,
            ],
            executable: "/usr/bin/prlimit")
        #expect(output.status == 3, "\(output.stdout)\(output.stderr)")
        #expect(output.stderr.contains("memory34 refused to go offline: memory34: Operation not permitted (errno 1)"))
        #expect(output.stderr.contains("could not put back memory35: Input/output error (errno 5)"))
        #expect(tree.state("memory34") == "online" && tree.state("memory33") == "online")
    }

    /// Whether this test run can make a file append-only in the temporary directory.
    static let canMakeAppendOnly: Bool = {
        guard getuid() == 0, access("/usr/bin/prlimit", X_OK) == 0 else { return false }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("hotplugd-\(UUID().uuidString)").path
        guard FileManager.default.createFile(atPath: path, contents: nil) else { return false }
        defer {
            _ = try? shell("chattr -a '\(path)'")
            try? FileManager.default.removeItem(atPath: path)
        }
        return (try? shell("chattr +a '\(path)'")) != nil
    }()

    @discardableResult
    static func shell(_ command: String) throws -> Output {
        let output = try run(["-c", command], executable: "/bin/sh")
        guard output.status == 0 else { throw ShellError(command: command, output: output.stderr) }
        return output
    }

    struct ShellError: Error {
        var command: String
        var output: String
    }
}
