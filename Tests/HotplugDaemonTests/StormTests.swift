import Foundation
import Glibc
import HotplugFixtures
import HotplugSystem
import Synchronization
import Testing

/// The daemon binary under uevent storms from this machine's kernel: `change` written to the
/// `uevent` files of cpu0, cpu1 and memory1 by three threads at once, into a 64 KiB receive buffer,
/// so that the socket overruns again and again. Needs root (the tests run as root).
@Suite(.enabled(if: RealKernel.canTrigger, "needs root and a writable /sys"), .serialized)
struct StormTests {
    static let targets = ["cpu/cpu0", "cpu/cpu1", "memory/memory1"]

    /// `change` into each target's `uevent` from a thread of its own, `count` times each or until
    /// `until`; returns how many were written.
    static func storm(count: Int = .max, until deadline: ContinuousClock.Instant? = nil) -> Int {
        let written = Atomic<Int>(0)
        let group = DispatchGroup()
        for target in targets {
            group.enter()
            Thread {
                defer { group.leave() }
                let fd = open("/sys/devices/system/\(target)/uevent", O_WRONLY | O_CLOEXEC)
                guard fd >= 0 else { return }
                defer { close(fd) }
                var done = 0
                while done < count, deadline.map({ ContinuousClock.now < $0 }) ?? true {
                    guard pwrite(fd, "change", 6, 0) == 6 else { return }
                    done += 1
                }
                written.add(done, ordering: .relaxed)
            }.start()
        }
        group.wait()
        return written.load(ordering: .relaxed)
    }

    /// The daemon binary with standard error in a file the test reads while it runs. Unchecked
    /// Sendable: the process object is only started, read and signalled, never changed.
    final class RunningDaemon: @unchecked Sendable {
        let process = Process()
        let logPath = FileManager.default.temporaryDirectory.appendingPathComponent("hotplugd-storm-\(UUID()).log").path

        init(_ arguments: [String], environment: [String: String] = [:]) throws {
            guard FileManager.default.createFile(atPath: logPath, contents: nil) else { throw POSIXError(.EIO) }
            process.executableURL = URL(fileURLWithPath: CLITests.binary)
            process.arguments = arguments
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
            process.standardError = FileHandle(forWritingAtPath: logPath)
            process.standardOutput = FileHandle.nullDevice
            try process.run()
        }

        deinit {
            if process.isRunning { process.terminate() }
            try? FileManager.default.removeItem(atPath: logPath)
        }

        var log: [String] {
            ((try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
        }

        /// Resident memory, from /proc/PID/status.
        var residentKiB: Int {
            let status =
                (try? String(contentsOfFile: "/proc/\(process.processIdentifier)/status", encoding: .utf8)) ?? ""
            let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
            return Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0
        }

        func waitFor(_ fragment: String, timeout: Duration = .seconds(120)) async throws {
            try await RealKernel.until(timeout: timeout) { log.contains { $0.contains(fragment) } }
        }

        /// SIGTERM, then how long until the process was gone.
        func stop() async throws -> Duration {
            let started = ContinuousClock.now
            process.terminate()
            try await RealKernel.until(timeout: .seconds(60)) { !process.isRunning }
            return ContinuousClock.now - started
        }
    }

    static func config(_ text: String) throws -> String {
        try CLITests.temporaryFile("[monitor]\nsource = \"kernel\"\nreceive_buffer_bytes = 65536\n" + text)
    }

    /// Rescans run one after the other, never two at once, and each one started is finished.
    static func rescansAreSequential(_ log: [String]) -> Bool {
        var running = false
        for line in log {
            if line.contains("rescanning sysfs") {
                if running { return false }
                running = true
            } else if line.contains("rescan finished") {
                if !running { return false }
                running = false
            }
        }
        return !running
    }

    @Test func aStormOverrunsTheSocketAndTheDaemonKeepsUpAndStops() async throws {
        let config = try Self.config("")
        defer { try? FileManager.default.removeItem(atPath: config) }
        let state = FileManager.default.temporaryDirectory.appendingPathComponent("hotplugd-storm-\(UUID())").path
        let daemon = try RunningDaemon(["run", "--dry-run", "--config", config, "--state-directory", state])
        try await daemon.waitFor("memory devices present")
        try await Task.sleep(for: .milliseconds(200))
        let residentAtStart = daemon.residentKiB
        let peak = Atomic<Int>(residentAtStart)
        let sampler = Task {
            while !Task.isCancelled {
                let now = daemon.residentKiB
                if now > peak.load(ordering: .relaxed) { peak.store(now, ordering: .relaxed) }
                try? await Task.sleep(for: .milliseconds(20))
            }
        }
        let written = await Task.detached { Self.storm(count: 30_000) }.value
        #expect(written == 90_000)
        let stopTime = try await daemon.stop()
        sampler.cancel()
        let log = daemon.log
        let rescans = log.filter { $0.contains("rescanning sysfs") }.count
        try #require(rescans >= 1, "the storm must overrun the socket, or this test shows nothing")
        #expect(!log.contains { $0.contains("refused uevent datagram") }, "an overrun is lost events, never a refusal")
        #expect(Self.rescansAreSequential(log))
        #expect(peak.load(ordering: .relaxed) <= 2 * residentAtStart, "RSS \(residentAtStart) KiB at start")
        #expect(stopTime < .seconds(5))
        #expect(daemon.process.terminationStatus == 0)
        #expect(log.contains { $0.contains("stopping") })
    }

    @Test func watchdogPingsKeepComingWhileAStormRescansAGreatTree() async throws {
        let tree = try FakeSysfsTree(parent: "/dev/shm")
        try tree.addCPU(0, online: nil)
        try tree.addCPU(1, online: true)
        for index in 0..<36_000 { try tree.addMemory(index, online: true, zones: "Normal") }
        let socketPath = "\(tree.root)/notify"
        let notifications = try NotifySocket(path: socketPath)
        let config = try Self.config("")
        defer { try? FileManager.default.removeItem(atPath: config) }
        // 20 s: the daemon pings every 5 s while its loop makes progress.
        let daemon = try RunningDaemon(
            ["run", "--dry-run", "--config", config, "--sysfs-root", tree.root],
            environment: ["NOTIFY_SOCKET": socketPath, "WATCHDOG_USEC": "20000000"])
        try await daemon.waitFor("memory devices present")
        try await RealKernel.until(timeout: .seconds(60)) {
            notifications.received.contains { $0.text.contains("READY=1") }
        }
        let stormStart = ContinuousClock.now
        _ = await Task.detached { Self.storm(until: stormStart + .seconds(13)) }.value
        try await Task.sleep(for: .seconds(2))
        let stopRequested = ContinuousClock.now
        let stopTime = try await daemon.stop()
        let log = daemon.log
        try #require(log.contains { $0.contains("rescanning sysfs") }, "the storm must cause rescans of the tree")
        #expect(Self.rescansAreSequential(log))
        let pings = notifications.received.filter { $0.text.contains("WATCHDOG=1") && $0.at >= stormStart }.map(\.at)
        // From the storm's start to the stop, through every ping: silence at either end counts too.
        let marks = [stormStart] + pings + [stopRequested]
        let gaps = zip(marks.dropFirst(), marks).map { $0 - $1 }
        #expect(pings.count >= 3, "\(pings.count) pings")
        #expect(gaps.allSatisfy { $0 < .seconds(10) }, "gaps: \(gaps)")
        #expect(stopTime < .seconds(5))
    }
}

/// A datagram socket standing in for systemd's notification socket: what the daemon sends, when.
final class NotifySocket: Sendable {
    struct Message: Sendable {
        var text: String
        var at: ContinuousClock.Instant
    }

    private let messages = Locked<[Message]>([])
    private let fd: Int32

    init(path: String) throws {
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            for (index, byte) in path.utf8.prefix(buffer.count - 1).enumerated() { buffer[index] = byte }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard fd >= 0, bound == 0 else { throw POSIXError(.EINVAL) }
        Thread { [self] in
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let count = recv(fd, &buffer, buffer.count, 0)
                if count < 0 { return }
                let text = String(decoding: buffer[..<count], as: UTF8.self)
                messages.withLock { $0.append(Message(text: text, at: .now)) }
            }
        }.start()
    }

    var received: [Message] { messages.withLock { $0 } }
}
