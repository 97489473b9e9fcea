import Foundation
import Testing

@testable import HotplugCore

@Suite struct ConfigParserTests {
    static let shipped = try! String(
        contentsOf: URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("config/hotplugd.toml"), encoding: .utf8)

    @Test func emptyFileMeansDefaults() throws {
        #expect(try ConfigParser.parse("") == Config())
    }

    @Test func shippedFileIsEveryKeyAtItsDefault() throws {
        #expect(try ConfigParser.parse(Self.shipped) == Config())
        // Uncommented, it still parses to the defaults (apart from the examples: node rule, metrics file, hook).
        let uncommented = Self.shipped.split(separator: "\n", omittingEmptySubsequences: false).map { line in
            line.hasPrefix("#") && !line.hasPrefix("# ") && line != "#" ? line.dropFirst() : line
        }.joined(separator: "\n")
        var expected = Config()
        expected.memory.nodes = [Config.NodeRule(node: 1, autoOnline: true, onlineType: .onlineMovable)]
        expected.metrics.textfile = "/var/lib/prometheus/node-exporter/hotplugd.prom"
        expected.hooks = [Config.Hook(name: "cpusets", command: ["/usr/local/sbin/update-cpusets", "--all"])]
        #expect(try ConfigParser.parse(uncommented) == expected)
    }

    @Test func everyKeyIsRead() throws {
        let config = try ConfigParser.parse(
            """
            [monitor]
            source = "kernel"
            receive_buffer_bytes = 1048576
            [cpu]
            auto_online = false
            include = "0-15"
            exclude = "3,5"
            coldplug = "never"
            [memory]
            auto_online = false
            online_type = "online_movable"
            auto_movable_ratio = 150
            auto_movable_numa_aware = false
            coldplug = "always"
            [[memory.node]]
            node = 0
            online_type = "online_kernel"
            [[memory.node]]
            node = 3
            auto_online = true
            """)
        #expect(config.monitor.source == .kernel)
        #expect(config.monitor.receiveBufferBytes == 1_048_576)
        #expect(config.cpu.autoOnline == false)
        #expect(config.cpu.include.ranges == [0...15])
        #expect(config.cpu.exclude.ranges == [3...3, 5...5])
        #expect(config.cpu.coldplug == .never)
        #expect(config.memory.autoOnline == false)
        #expect(config.memory.onlineType == .onlineMovable)
        #expect(config.memory.autoMovableRatio == 150)
        #expect(config.memory.autoMovableNUMAAware == false)
        #expect(config.memory.coldplug == .always)
        #expect(config.memory.nodes == [.init(node: 0, onlineType: .onlineKernel), .init(node: 3, autoOnline: true)])
    }

    @Test func hooksMetricsAndEnforceAreRead() throws {
        let config = try ConfigParser.parse(
            """
            [metrics]
            textfile = "/var/lib/prometheus/node-exporter/hotplugd.prom"
            [cpu]
            enforce = true
            [memory]
            enforce = true
            [[hook]]
            command = ["/usr/local/sbin/update-cpusets", "--all"]
            on = ["online", "offline"]
            devices = "cpu"
            timeout_seconds = 5
            [[hook]]
            name = "balloon-ack"
            command = ["/usr/local/bin/ack"]
            """)
        #expect(config.metrics.textfile == "/var/lib/prometheus/node-exporter/hotplugd.prom")
        #expect(config.cpu.enforce && config.memory.enforce)
        #expect(config.hooks.count == 2)
        let cpusets = config.hooks[0]
        #expect(cpusets.name == "update-cpusets")
        #expect(cpusets.command == ["/usr/local/sbin/update-cpusets", "--all"])
        #expect(cpusets.events == [.online, .offline])
        #expect(cpusets.kinds == [.cpu])
        #expect(cpusets.timeout == .seconds(5))
        let ack = config.hooks[1]
        #expect(ack.name == "balloon-ack")
        #expect(ack.events == [.online])
        #expect(ack.kinds == [.cpu, .memory])
        #expect(ack.timeout == .seconds(30))
    }

    @Test(arguments: [
        // text, expected line, key, message fragment
        ("[memory]\nonline_typ = \"online\"", 2, "memory.online_typ", "unknown key"),
        ("[cpu]\nauto_online = true\n[bogus]\nx = 1", 3, "bogus", "unknown key"),
        (
            "[memory]\n\nonline_type = \"online-movable\"", 3,
            "memory.online_type", "\"online-movable\" is not one of online, online_kernel, online_movable, auto-movable"
        ),
        ("[monitor]\nsource = \"netlink\"", 2, "monitor.source", "is not one of auto, udev, kernel"),
        ("[monitor]\nreceive_buffer_bytes = 10", 2, "monitor.receive_buffer_bytes", "10 is outside"),
        ("[memory]\nauto_movable_ratio = -5", 2, "memory.auto_movable_ratio", "-5 is outside"),
        ("[memory]\nauto_movable_ratio = \"301\"", 2, "memory.auto_movable_ratio", "expected an integer"),
        ("[cpu]\nauto_online = 1", 2, "cpu.auto_online", "expected true or false"),
        ("[cpu]\nauto_online = true\nauto_online = false", 3, "cpu.auto_online", "given twice in its table"),
        ("[cpu]\nauto_online = true\n[cpu]\ninclude = \"1\"", 3, "cpu", "this table appears twice"),
        ("[cpu]\ninclude = \"0-3,x\"", 2, "cpu.include", "\"x\" in CPU list"),
        ("[cpu]\ncoldplug = true", 2, "cpu.coldplug", "expected a string"),
        (
            "[memory]\n[[memory.node]]\nnode = 1\n[[memory.node]]\nnode = 1", 5, "memory.node[1].node",
            "already has a rule"
        ),
        ("[[memory.node]]\nonline_type = \"online\"", 1, "memory.node[0].node", "required key is missing"),
        ("[[memory.node]]\nnode = 2\nonline_type = \"fast\"", 3, "memory.node[0].online_type", "is not one of"),
        ("[[memory.node]]\nnode = 2\nzone = 1", 3, "memory.node[0].zone", "unknown key"),
        ("[[memory.node]]\nnode = 5000", 2, "memory.node[0].node", "5000 is outside"),
        ("[cpu]\nenforce = \"yes\"", 2, "cpu.enforce", "expected true or false"),
        ("[metrics]\ntextfile = \"hotplugd.prom\"", 2, "metrics.textfile", "must be an absolute path ending in .prom"),
        ("[metrics]\ntextfile = \"/var/lib/x/hotplugd.txt\"", 2, "metrics.textfile", "ending in .prom"),
        ("[[hook]]\non = [\"online\"]", 1, "hook[0].command", "required"),
        ("[[hook]]\ncommand = []", 2, "hook[0].command", "required"),
        ("[[hook]]\ncommand = [\"irqbalance\"]", 2, "hook[0].command", "\"irqbalance\" is not an absolute path"),
        ("[[hook]]\ncommand = \"/bin/true\"", 2, "hook[0].command", "expected an array of strings"),
        ("[[hook]]\ncommand = [\"/bin/true\"]\non = [\"onlined\"]", 3, "hook[0].on[0]", "is not one of add, online"),
        ("[[hook]]\ncommand = [\"/bin/true\"]\non = []", 3, "hook[0].on", "lists no event"),
        (
            "[[hook]]\ncommand = [\"/bin/true\"]\ndevices = \"cpus\"", 3, "hook[0].devices",
            "not one of cpu, memory, all"
        ),
        (
            "[[hook]]\ncommand = [\"/bin/true\"]\ntimeout_seconds = 0", 3, "hook[0].timeout_seconds",
            "0 is outside 1...3600"
        ),
        ("[[hook]]\ncommand = [\"/bin/true\"]\nname = \"a b\"", 3, "hook[0].name", "is not a name"),
        (
            "[[hook]]\ncommand = [\"/bin/true\"]\n[[hook]]\ncommand = [\"/usr/bin/true\"]", 3, "hook[1].name",
            "is used by another hook"
        ),
        ("[[hook]]\ncommand = [\"/bin/true\"]\nevents = [\"online\"]", 3, "hook[0].events", "unknown key"),
    ])
    func badValuesNameKeyAndLine(text: String, line: Int, key: String, message: String) {
        do {
            _ = try ConfigParser.parse(text, file: "test.toml")
            Issue.record("accepted \(text.debugDescription)")
        } catch {
            #expect(error.line == line)
            #expect(error.key == key)
            #expect(error.message.contains(message), "\(error.message)")
            #expect(error.description.hasPrefix("test.toml:\(line): \(key): "))
        }
    }

    @Test func everyErrorOfAFileIsSaidInFileOrder() {
        let text = """
            [monitor]
            source = "telepathy"
            [cpu]
            colour = "blue"
            include = "1-x"
            [memory]
            online_type = "fast"
            [[memory.node]]
            node = 0
            online_type = "sideways"
            [[hook]]
            command = ["irqbalance"]
            """
        do {
            _ = try ConfigParser.parse(text, file: "all.toml")
            Issue.record("accepted")
        } catch {
            let all = [error] + error.more
            #expect(all.map(\.line) == [2, 4, 5, 7, 10, 12])
            #expect(
                all.map(\.key) == [
                    "monitor.source", "cpu.colour", "cpu.include", "memory.online_type", "memory.node[0].online_type",
                    "hook[0].command",
                ])
            #expect(error.description.split(separator: "\n").count == 6)
            #expect(error.description.split(separator: "\n")[1] == "all.toml:4: cpu.colour: unknown key")
        }
    }

    @Test func brokenTOMLIsASyntaxErrorWithItsLine() {
        do {
            _ = try ConfigParser.parse("[cpu]\nauto_online = true\ninclude = \"0-3\n", file: "x.toml")
            Issue.record("accepted broken TOML")
        } catch {
            #expect(error.line == 3)
            #expect(error.key.isEmpty)
            #expect(error.description.hasPrefix("x.toml:3: "))
        }
    }

    /// Inputs that once crashed the parser (found by `make fuzz`) or were read wrongly: each
    /// is now an error naming its line.
    @Test(arguments: [
        ("[cpu]\n[!memory]\n", 2, "a table header must start with a key, not '!'"),
        ("[[ ?hook]]\ncommand = [\"/bin/true\"]\n", 1, "a table header must start with a key"),
        ("[\u{FFFD}etrics]\n", 1, "a table header must start with a key"),
        ("[cpu]\n[\nmemory]\n", 2, "a table header must start with a key, not the end of the line"),
        ("[cpu]\r\n[ !memory]\r\n", 2, "a table header must start with a key, not '!'"),
    ])
    func headersTheTOMLLibraryWouldAbortOn(text: String, line: Int, message: String) {
        #expect(throws: ConfigError.self) { try ConfigParser.parse(text, file: "x.toml") }
        do {
            _ = try ConfigParser.parse(text, file: "x.toml")
        } catch {
            #expect(error.line == line)
            #expect(error.message.hasPrefix(message), "\(error.message)")
        }
    }

    @Test func invalidUTF8IsAnErrorWithItsLine() {
        let bytes = Array("[cpu]\nauto_online = true\n# caf".utf8) + [0xE9] + Array("\n".utf8)
        do {
            _ = try ConfigParser.parse(bytes: bytes, file: "x.toml")
            Issue.record("accepted invalid UTF-8")
        } catch {
            #expect(error.description == "x.toml:3: not valid UTF-8")
        }
        #expect(throws: Never.self) { try ConfigParser.parse(bytes: Array("# café\n[cpu]\n".utf8), file: "x.toml") }
    }
}
