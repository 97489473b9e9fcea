import Foundation
import HotplugCore
import HotplugDaemon
import HotplugFixtures
import HotplugSystem
import Testing

/// Hooks as real processes: batching, environment, output, exit status, timeout.
@Suite struct HookRunnerTests {
    let directory: String
    let log = LogCapture()
    let results = Results()

    final class Results: Sendable {
        private let runs = Locked<[(String, HookRunner.Result)]>([])
        func withLock<T>(_ body: (inout [(String, HookRunner.Result)]) -> T) -> T { runs.withLock { body(&$0) } }
    }

    init() throws {
        directory =
            FileManager.default.temporaryDirectory.appendingPathComponent("hotplugd-hooks-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    /// An executable shell script in the test's directory.
    func script(_ name: String, _ body: String) throws -> String {
        let path = "\(directory)/\(name)"
        try "#!/bin/sh\n\(body)\n".write(toFile: path, atomically: true, encoding: .utf8)
        chmod(path, 0o755)
        return path
    }

    func runner(_ hooks: [Config.Hook], dryRun: Bool = false) -> HookRunner {
        var options = HookRunner.Options()
        options.settle = .milliseconds(50)
        options.killGrace = .milliseconds(500)
        options.dryRun = dryRun
        let results = self.results
        return HookRunner(hooks: hooks, options: options, logger: log.logger()) { run, result, _ in
            results.withLock { $0.append((run.hook.name, result)) }
        }
    }

    static func online(_ name: String, node: Int = 0) -> DeviceChange {
        DeviceChange(device: DeviceID(name: name)!, event: .online, node: node)
    }

    @Test func aBurstRunsTheHookOnceWithEveryDevice() async throws {
        let record = "\(directory)/runs"
        let hook = Config.Hook(
            name: "record",
            command: [
                try script(
                    "record", "env | grep -E '^(HOTPLUG_|PATH=|SECRET)' | sort >> \(record); echo --- >> \(record)")
            ])
        setenv("SECRET_OF_THE_DAEMON", "1", 1)
        // Changes submitted separately join too (see changesDuringARunMakeTheNextRun); timing that
        // here would depend on how busy the test machine's threads are.
        let runner = runner([hook])
        await runner.submit([
            Self.online("cpu4"), Self.online("cpu5"), DeviceChange(device: DeviceID(name: "cpu6")!, event: .add),
        ])
        await runner.idle()
        let text = try String(contentsOfFile: record, encoding: .utf8)
        #expect(
            text == """
                HOTPLUG_ACTION=online
                HOTPLUG_COUNT=2
                HOTPLUG_DETAILS=cpu4:0:- cpu5:0:-
                HOTPLUG_DEVICES=cpu4 cpu5
                HOTPLUG_HOOK=record
                HOTPLUG_KIND=cpu
                HOTPLUG_NODES=0
                HOTPLUG_PART=1/1
                HOTPLUG_ZONES=
                PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
                ---

                """, "one run for the burst; the add is not subscribed; nothing of the daemon's environment")
        #expect(results.withLock { $0.map(\.1) } == [.exited(0)])
        #expect(log.has(.info, "hook ran", ["action": "online", "devices": "2"]))
        #expect(log.fields(of: "hook ran").allSatisfy { $0["duration_ms"].flatMap(Int.init) != nil })
    }

    @Test func outputIsLoggedAndAFailureIsReported() async throws {
        let hook = Config.Hook(
            name: "noisy", command: [try script("noisy", "echo to stdout; echo to stderr >&2; exit 3")])
        let runner = runner([hook])
        await runner.submit([Self.online("cpu4")])
        await runner.idle()
        #expect(log.has(.info, "hook output", ["hook": "noisy", "line": "to stdout"]))
        #expect(log.has(.info, "hook output", ["hook": "noisy", "line": "to stderr"]))
        #expect(log.has(.warning, "hook failed", ["hook": "noisy"]))
        #expect(log.contains("status=3"))
        #expect(results.withLock { $0.map(\.1) } == [.exited(3)])
    }

    @Test func aHookThatOutlivesItsTimeoutIsStopped() async throws {
        var hook = Config.Hook(name: "stuck", command: [try script("stuck", "exec sleep 120")])
        hook.timeout = .milliseconds(300)
        let runner = runner([hook])
        let started = ContinuousClock.now
        await runner.submit([Self.online("cpu4")])
        await runner.idle()
        // Well before the command's own end: stopped, not waited for. (Spawning and signalling
        // take seconds on a machine busy with the other suites, so the bound is not tighter.)
        #expect(ContinuousClock.now - started < .seconds(60))
        #expect(results.withLock { $0.map(\.1) } == [.timedOut])
        #expect(log.contains("error hook timed out and was stopped"))
    }

    @Test func aSleeperForkedByAnOverrunningHookGoesWithIt() async throws {
        let sleeper = "\(directory)/sleeper"
        var hook = Config.Hook(
            name: "forks", command: [try script("forks", "sleep 120 >/dev/null 2>&1 & echo $! > \(sleeper); sleep 120")]
        )
        hook.timeout = .milliseconds(300)
        let runner = runner([hook])
        await runner.submit([Self.online("cpu4")])
        await runner.idle()
        #expect(results.withLock { $0.map(\.1) } == [.timedOut])
        let pid = try #require(
            Int32(String(contentsOfFile: sleeper, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)))
        // The whole process group had SIGTERM: the sleeper is gone, or a zombie its new parent reaps.
        let deadline = ContinuousClock.now + .seconds(10)
        while Self.alive(pid), ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        #expect(!Self.alive(pid), "the hook's background sleep \(pid) outlived the hook")
    }

    /// Running and not a zombie.
    static func alive(_ pid: Int32) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { return false }
        return stat.split(separator: ")").last?.split(separator: " ").first != "Z"
    }

    @Test func anOutputLineOfAnyLengthIsLoggedCutAndTheStatusKept() async throws {
        let hook = Config.Hook(
            name: "long",
            command: [try script("long", "head -c 300000 /dev/zero | tr '\\0' x; echo; echo after; exit 3")])
        let runner = runner([hook])
        await runner.submit([Self.online("cpu4")])
        await runner.idle()
        #expect(results.withLock { $0.map(\.1) } == [.exited(3)])
        #expect(
            log.has(
                .info, "hook output",
                ["hook": "long", "line": "\(String(repeating: "x", count: 1000)) [299000 more bytes not logged]"]))
        #expect(log.has(.info, "hook output", ["hook": "long", "line": "after"]))
    }

    @Test func aHookHasItsOwnProcessGroupNoCapabilitiesAndTheDefaultOOMScore() async throws {
        // The test process stands for the daemon: a score the hook must not inherit.
        let adjusted =
            (try? "-100".write(toFile: "/proc/self/oom_score_adj", atomically: false, encoding: .utf8)) != nil
        defer { if adjusted { try? "0".write(toFile: "/proc/self/oom_score_adj", atomically: false, encoding: .utf8) } }
        let record = "\(directory)/powers"
        let hook = Config.Hook(
            name: "powers",
            command: [
                try script(
                    "powers",
                    """
                    grep CapEff /proc/self/status > \(record)
                    echo "oom $(cat /proc/self/oom_score_adj)" >> \(record)
                    set -- $(cut -d' ' -f5 /proc/$$/stat)
                    echo "leader $(( $1 == $$ ))" >> \(record)
                    """)
            ])
        let runner = runner([hook])
        await runner.submit([Self.online("cpu4")])
        await runner.idle()
        #expect(results.withLock { $0.map(\.1) } == [.exited(0)])
        let text = try String(contentsOfFile: record, encoding: .utf8)
        #expect(text.contains("CapEff:\t0000000000000000"), "\(text)")
        #expect(text.contains("leader 1"), "the hook leads its own process group: \(text)")
        if adjusted { #expect(text.contains("oom 0"), "\(text)") }
    }

    @Test func aBurstOf6000BlocksReachesTheHookInParts() async throws {
        let record = "\(directory)/runs"
        let hook = Config.Hook(
            name: "many",
            command: [try script("many", "echo \"$HOTPLUG_PART $HOTPLUG_COUNT $HOTPLUG_DEVICES\" >> \(record)")])
        let runner = runner([hook])
        await runner.submit((0..<6000).map { Self.online("memory\(100 + $0)") })
        await runner.idle()
        let runs = try String(contentsOfFile: record, encoding: .utf8).split(separator: "\n").map {
            $0.split(separator: " ")
        }
        #expect(runs.map { String($0[0]) } == (1...6).map { "\($0)/6" })
        #expect(runs.map { Int($0[1]) } == [1024, 1024, 1024, 1024, 1024, 880])
        #expect(runs.flatMap { $0.dropFirst(2).map(String.init) } == (0..<6000).map { "memory\(100 + $0)" })
        #expect(results.withLock { $0.map(\.1) } == Array(repeating: .exited(0), count: 6))
    }

    @Test func aMissingCommandIsAnErrorNotACrash() async throws {
        let runner = runner([Config.Hook(name: "missing", command: ["\(directory)/does-not-exist"])])
        await runner.submit([Self.online("cpu4")])
        await runner.idle()
        guard case .couldNotStart = results.withLock({ $0.first?.1 }) else {
            Issue.record("expected couldNotStart, got \(results.withLock { $0 })")
            return
        }
        #expect(log.contains("error hook could not start"))
    }

    @Test func changesDuringARunMakeTheNextRun() async throws {
        let record = "\(directory)/runs"
        let hook = Config.Hook(
            name: "slow", command: [try script("slow", "echo $HOTPLUG_DEVICES >> \(record); sleep 1")])
        let runner = runner([hook])
        await runner.submit([Self.online("cpu4")])
        // Once the first run has started (it writes, then sleeps a second), the next changes queue.
        while !FileManager.default.fileExists(atPath: record) { try await Task.sleep(for: .milliseconds(5)) }
        for name in ["cpu5", "cpu6", "cpu7"] { await runner.submit([Self.online(name)]) }
        await runner.idle()
        #expect(try String(contentsOfFile: record, encoding: .utf8) == "cpu4\ncpu5 cpu6 cpu7\n")
    }

    @Test func aDryRunRunsNothing() async throws {
        let record = "\(directory)/runs"
        let runner = runner([Config.Hook(name: "r", command: [try script("r", "touch \(record)")])], dryRun: true)
        await runner.submit([Self.online("cpu4")])
        await runner.idle()
        #expect(!FileManager.default.fileExists(atPath: record))
        #expect(log.contains("would run hook (dry run)"))
    }
}
