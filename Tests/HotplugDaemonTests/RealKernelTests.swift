import Foundation
import Glibc
import HotplugCore
import HotplugDaemon
import HotplugFixtures
import HotplugSystem
import Synchronization
import Testing

/// Real uevents from this machine's kernel, made by writing an action into a device's `uevent`
/// file (as `udevadm trigger` does): the kernel broadcasts it and changes nothing on the device.
/// Needs root; the test run is made as root.
@Suite(.enabled(if: RealKernel.canTrigger, "needs root and a writable /sys"), .serialized)
struct RealKernelTests {
    @Test func monitorHearsRealCPUAndMemoryEvents() async throws {
        let cpu = try #require(RealKernel.last(.cpu))
        let block = try #require(RealKernel.last(.memory))
        let inbox = Inbox()
        let monitor = try UdevMonitor(options: .init(source: .kernel, receiveBufferBytes: 1 << 20)) { inbox.put($0) }
        defer { monitor.stop() }
        try await inbox.wait { if case .ready(.kernel, let bytes) = $0 { bytes > 0 } else { false } }

        try RealKernel.trigger("change", cpu)
        try RealKernel.trigger("online", block)
        try await inbox.wait { message in
            guard case .events(let batch) = message else { return false }
            return batch.contains { (try? UeventDecoder.decode($0))?.device == block }
        }
        let events = inbox.events.compactMap { try? UeventDecoder.decode($0) }
        let cpuEvent = try #require(events.first { $0.device == cpu })
        #expect(cpuEvent.action == .change)
        #expect(cpuEvent.seqnum > 0)
        let blockEvent = try #require(events.first { $0.device == block })
        #expect(blockEvent.action == .online)
        #expect(blockEvent.seqnum > cpuEvent.seqnum)
    }

    @Test func overflowIsReportedAsLostEvents() async throws {
        let block = try #require(RealKernel.last(.memory))
        let inbox = Inbox()
        let release = Mutex(false)
        // The handler holds the monitor thread on its first batch, so the socket fills up.
        let monitor = try UdevMonitor(options: .init(source: .kernel, receiveBufferBytes: 4096)) { message in
            inbox.put(message)
            while case .events = message, !release.withLock({ $0 }) { usleep(1000) }
        }
        defer { monitor.stop() }
        try await inbox.wait { if case .ready = $0 { true } else { false } }
        try RealKernel.trigger("change", block)
        try await inbox.wait { if case .events = $0 { true } else { false } }
        for _ in 0..<500 { try RealKernel.trigger("change", block) }
        release.withLock { $0 = true }
        try await inbox.wait { $0 == .eventsLost }
    }

    @Test func daemonInDryRunFollowsRealEventsAndWritesNothing() async throws {
        let cpu = try #require(RealKernel.last(.cpu))
        let block = try #require(RealKernel.last(.memory))
        let log = LogCapture()
        var options = Daemon.Options(config: Config())
        options.dryRun = true
        options.source = .kernel
        options.runtimeDirectory = nil
        let daemon = Daemon(options: options, logger: log.logger())
        let task = Task { try await daemon.run() }
        defer { task.cancel() }
        try await RealKernel.until { log.contains("memory devices present") }

        try RealKernel.trigger("add", cpu)
        try RealKernel.trigger("online", block)
        try await RealKernel.until {
            log.contains("uevent action=add device=\(cpu)") && log.contains("uevent action=online device=\(block)")
        }
        #expect(log.contains("listening for uevents dry_run=true receive_buffer_bytes="))
        #expect(!log.contains("would online"), "every device on this machine is online already")
        #expect(!log.contains("rejected"))
        #expect(!log.all.contains { $0.contains(" -> ") && !$0.hasPrefix("debug") }, "no state changed")
        task.cancel()
        try await task.value
    }
}

enum RealKernel {
    static let canTrigger = getuid() == 0 && access("/sys/devices/system/cpu/cpu0/uevent", W_OK) == 0

    /// The highest-numbered device of a kind on this machine.
    static func last(_ kind: DeviceKind) -> DeviceID? {
        (try? Sysfs().devices(kind))?.max()
    }

    static func trigger(_ action: String, _ device: DeviceID) throws {
        try action.write(toFile: "/sys\(device.devpath)/uevent", atomically: false, encoding: .utf8)
    }

    static func until(timeout: Duration = .seconds(10), _ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while !condition() {
            guard ContinuousClock.now < deadline else { throw TimedOut() }
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    struct TimedOut: Error {}
}

/// Collects what a monitor hands on, from its thread.
final class Inbox: Sendable {
    private let messages = Mutex<[MonitorMessage]>([])

    func put(_ message: MonitorMessage) { messages.withLock { $0.append(message) } }

    var events: [RawUevent] {
        messages.withLock { messages in
            messages.flatMap { message -> [RawUevent] in
                if case .events(let batch) = message { batch } else { [] }
            }
        }
    }

    var refusals: [String] {
        messages.withLock { messages in
            messages.compactMap { message -> String? in if case .refused(let reason) = message { reason } else { nil } }
        }
    }

    func wait(_ matches: @escaping (MonitorMessage) -> Bool) async throws {
        try await RealKernel.until { messages.withLock { $0.contains(where: matches) } }
    }
}
