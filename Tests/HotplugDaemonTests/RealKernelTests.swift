import Foundation
import Glibc
import HotplugCore
import HotplugDaemon
import HotplugFixtures
import Synchronization
import Testing

@testable import HotplugSystem

/// Real uevents from this machine's kernel, made by writing an action into a device's `uevent`
/// file (as `udevadm trigger` does): the kernel broadcasts it and changes nothing on the device.
/// Needs root; the test run is made as root.
@Suite(.enabled(if: RealKernel.canTrigger, "needs root and a writable /sys"), .serialized)
struct RealKernelTests {
    @Test func monitorHearsRealCPUAndMemoryEvents() async throws {
        let cpu = try #require(RealKernel.last(.cpu))
        let block = try #require(RealKernel.last(.memory))
        let inbox = Inbox()
        // The handler runs on the monitor's thread: its scheduling policy is the thread's.
        let behindKernelWork = Atomic<Bool>(false)
        let monitor = try UdevMonitor(options: .init(source: .kernel, receiveBufferBytes: 1 << 20)) { message in
            if case .ready = message {
                behindKernelWork.store(ThreadScheduling.yieldsToKernelWork, ordering: .relaxed)
            }
            inbox.put(message)
        }
        defer { monitor.stop() }
        try await inbox.wait { if case .ready(.kernel, let bytes, nil) = $0 { bytes > 0 } else { false } }
        let monitorThreadBatch = behindKernelWork.load(ordering: .relaxed)
        #expect(monitorThreadBatch, "the monitor's thread is not under SCHED_BATCH")

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

    /// A tiny receive buffer, a slow handler and a few threads writing `change` as fast as they
    /// can: the socket overruns, which must come out as lost events (a rescan), never as a
    /// refusal. The kernel reports an overrun once until the queue has been emptied; a short
    /// pause in the handler lets overruns fall in the middle of a drain too, not only while it
    /// sleeps, and 50 of them (a fraction of a second) give every receive its chance to meet one.
    @Test func overflowIsReportedAsLostEvents() async throws {
        let cpus = Array(try Sysfs().devices(.cpu).sorted().prefix(2))
        try #require(!cpus.isEmpty)
        let inbox = Inbox()
        let monitor = try UdevMonitor(options: .init(source: .kernel, receiveBufferBytes: 4096)) { message in
            inbox.put(message)
            if case .events = message { usleep(100) }
        }
        defer { monitor.stop() }
        try await inbox.wait { if case .ready = $0 { true } else { false } }

        let overruns = 50
        let writers = 4
        let finished = Locked(0)
        let failures = Locked<[String]>([])
        for writer in 0..<writers {
            Thread {
                var round = 0
                while round < 5000, inbox.lost < overruns {
                    do {
                        try RealKernel.trigger("change", cpus[(writer + round) % cpus.count])
                    } catch {
                        failures.withLock { $0.append("\(error)") }
                    }
                    round += 1
                }
                finished.withLock { $0 += 1 }
            }.start()
        }
        try await RealKernel.until(timeout: .seconds(60)) { finished.withLock { $0 } == writers }
        #expect(failures.withLock { $0 }.isEmpty)
        try await RealKernel.until { inbox.lost > 0 }
        #expect(!inbox.refusals.contains { $0.contains("buffer space") }, "\(inbox.refusals)")
    }

    /// A stream of memory `online` events, one every 5 ms for 1.3 s, then a CPU event: held, the
    /// monitor hands the stream on once, when the CPU event comes (or the stream has been quiet
    /// for 100 ms), each event stamped with when it was received to 20 ms or so; not held, in a
    /// drain each or nearly. Nothing is lost either way, and the CPU event comes last.
    @Test(arguments: [true, false]) func memoryBurstsAreHeldWhenAsked(held: Bool) async throws {
        let cpu = try #require(RealKernel.last(.cpu))
        let block = try #require(RealKernel.last(.memory))
        let drains = Locked<[(at: ContinuousClock.Instant, events: [RawUevent])]>([])
        let inbox = Inbox()
        let monitor = try UdevMonitor(options: .init(source: .kernel, receiveBufferBytes: 1 << 20)) { message in
            if case .events(let batch) = message { drains.withLock { $0.append((.now, batch)) } }
            inbox.put(message)
        }
        defer { monitor.stop() }
        monitor.holdMemoryBursts(held ? .onlines : .none)
        try await inbox.wait { if case .ready = $0 { true } else { false } }
        let after = try RealKernel.seqnum()
        let count = 260
        let streamStart = ContinuousClock.now
        for _ in 0..<count {
            try RealKernel.trigger("online", block)
            usleep(5000)
        }
        let streamEnded = ContinuousClock.now
        let streamSeqnum = try RealKernel.seqnum()
        try RealKernel.trigger("change", cpu)
        try await inbox.waitForEvent(of: cpu, after: streamSeqnum)

        let ours = drains.withLock { $0 }.compactMap { drain -> (at: ContinuousClock.Instant, events: [RawUevent])? in
            let events = drain.events.filter { $0.seqnum.flatMap { UInt64($0) }.map { $0 > after } == true }
            return events.isEmpty ? nil : (drain.at, events)
        }
        let events = ours.flatMap(\.events)
        let stream = events.filter { $0.devpath == block.devpath && $0.action == "online" }
        #expect(stream.count == count)
        #expect(events.last?.devpath == cpu.devpath)
        let sizes = ours.map(\.events.count)
        if held {
            #expect(ours.count <= 2, "\(sizes)")
            #expect(ours.allSatisfy { $0.at >= streamEnded }, "\(sizes)")
            // Received as they came, not when handed on: spread over the stream, to a look's interval.
            let stamps = stream.compactMap(\.receivedAt)
            #expect(stamps.count == count)
            if let first = stamps.min(), let last = stamps.max() {
                #expect(first - streamStart < .milliseconds(100), "\(first - streamStart)")
                #expect(streamEnded - last < .milliseconds(100), "\(streamEnded - last)")
            }
        } else {
            #expect(ours.count >= count / 4, "\(sizes)")
        }
    }

    /// In userspace mode an `add` goes on once the kernel has been quiet for a moment: alone when
    /// it came alone, and with the whole drain when it came in the middle of one (its block's
    /// write would only wait for the adds queued behind it).
    @Test func anAddGoesOnWithTheEventsQueuedAroundIt() async throws {
        let block = try #require(RealKernel.last(.memory))
        let batches = Locked<[[RawUevent]]>([])
        let first = Atomic<Bool>(true)
        let inbox = Inbox()
        let monitor = try UdevMonitor(options: .init(source: .kernel, receiveBufferBytes: 1 << 20)) { message in
            if case .events(let batch) = message {
                batches.withLock { $0.append(batch) }
                // The first hand-on holds the thread while the next events queue up on the
                // socket: they are then received in one drain.
                if first.exchange(false, ordering: .relaxed) { usleep(300_000) }
            }
            inbox.put(message)
        }
        defer { monitor.stop() }
        monitor.holdMemoryBursts(.onlines)
        try await inbox.wait { if case .ready = $0 { true } else { false } }
        let after = try RealKernel.seqnum()
        try RealKernel.trigger("add", block)
        usleep(50_000)
        for action in ["online", "online", "add", "online", "online"] { try RealKernel.trigger(action, block) }
        try await inbox.waitForEvent(of: block, after: try RealKernel.seqnum() - 1)
        let ours = batches.withLock { $0 }.map { batch in
            batch.filter { $0.devpath == block.devpath && ($0.seqnum.flatMap { UInt64($0) } ?? 0) > after }
                .compactMap(\.action)
        }.filter { !$0.isEmpty }
        #expect(ours == [["add"], ["online", "online", "add", "online", "online"]])
    }

    /// In userspace mode an `add` goes on `PendingEvents.addQuiet` after it came, when nothing
    /// followed: the thread still wakes at each datagram. Holding the kernel's burst, it waits
    /// for the burst.
    @Test(arguments: [MemoryBurstHolding.onlines, .addsAndOnlines])
    func anAddGoesOnAfterAShortQuietUnlessTheKernelsBurstIsHeld(holding: MemoryBurstHolding) async throws {
        let block = try #require(RealKernel.last(.memory))
        let handedOn = Locked<[(at: ContinuousClock.Instant, events: [RawUevent])]>([])
        let inbox = Inbox()
        let monitor = try UdevMonitor(options: .init(source: .kernel, receiveBufferBytes: 1 << 20)) { message in
            if case .events(let batch) = message { handedOn.withLock { $0.append((.now, batch)) } }
            inbox.put(message)
        }
        defer { monitor.stop() }
        monitor.holdMemoryBursts(holding)
        try await inbox.wait { if case .ready = $0 { true } else { false } }
        let after = try RealKernel.seqnum()
        var triggered: [ContinuousClock.Instant] = []
        for round in 0..<160 {
            if round % 8 == 4 {
                triggered.append(.now)
                try RealKernel.trigger("add", block)
            } else {
                try RealKernel.trigger("online", block)
            }
            usleep(5000)
        }
        let streamEnded = ContinuousClock.now
        try await inbox.waitForEvent(of: block, after: try RealKernel.seqnum() - 1)
        // When each of our `add` events was handed on, in the order sent.
        let handedOnAt = handedOn.withLock { $0 }.flatMap { drain in
            drain.events.filter {
                $0.action == "add" && $0.devpath == block.devpath && ($0.seqnum.flatMap { UInt64($0) } ?? 0) > after
            }.map { _ in drain.at }
        }
        #expect(handedOnAt.count == triggered.count)
        let delays = zip(triggered, handedOnAt).map { $1 - $0 }
        if holding == .onlines {
            // Never before the quiet; looking only every 20 ms, few or none would be this prompt
            // (about 20 ms each, measured).
            #expect(delays.allSatisfy { $0 >= PendingEvents.addQuiet }, "\(delays)")
            let prompt = delays.filter { $0 < .milliseconds(10) }.count
            #expect(prompt * 2 >= delays.count, "\(delays)")
        } else {
            #expect(handedOnAt.allSatisfy { $0 >= streamEnded }, "\(delays)")
        }
    }

    /// Holding the kernel's burst, the thread leaves it on the socket while more keeps coming,
    /// receives it once the socket has held no more for a look, and dates each event by the look
    /// that first saw it queued.
    @Test func theKernelsBurstIsLeftOnTheSocketUntilItEnds() async throws {
        let block = try #require(RealKernel.last(.memory))
        let handedOn = Locked<[(at: ContinuousClock.Instant, events: [RawUevent])]>([])
        let inbox = Inbox()
        let (monitor, socket) = try await RealKernel.monitorWithSocket(bufferBytes: 1 << 20) { message in
            if case .events(let batch) = message { handedOn.withLock { $0.append((.now, batch)) } }
            inbox.put(message)
        }
        defer { monitor.stop() }
        monitor.holdMemoryBursts(.addsAndOnlines)
        let after = try RealKernel.seqnum()
        let count = 200
        var queued: [Int] = []
        let streamStart = ContinuousClock.now
        for round in 0..<count {
            try RealKernel.trigger("online", block)
            usleep(5000)
            if round % 10 == 9 { queued.append(try RealKernel.queuedBytes(socket)) }
        }
        let streamEnded = ContinuousClock.now
        try await inbox.waitForEvent(of: block, after: try RealKernel.seqnum() - 1)
        let ours = handedOn.withLock { $0 }.compactMap { drain -> (at: ContinuousClock.Instant, events: [RawUevent])? in
            let events = drain.events.filter { ($0.seqnum.flatMap { UInt64($0) } ?? 0) > after }
            return events.isEmpty ? nil : (drain.at, events)
        }
        let stream = ours.flatMap(\.events).filter { $0.devpath == block.devpath && $0.action == "online" }
        #expect(stream.count == count)
        #expect(ours.count <= 2 && ours.allSatisfy { $0.at >= streamEnded }, "\(ours.map(\.events.count))")
        // Unreceived while the stream went on: what the socket held only grew (received every
        // look instead, it would drop ten times over the stream).
        #expect(queued.first.map { $0 > 0 } == true && queued.last! > queued.first!, "\(queued)")
        #expect(queued == queued.sorted(), "\(queued)")
        let stamps = stream.compactMap(\.receivedAt)
        #expect(stamps.count == count && stamps == stamps.sorted())
        // Dated by the looks (one every 100 ms over a second's stream), not all at the receive.
        #expect(Set(stamps).count >= 5, "\(Set(stamps).count) distinct receive times")
        if let first = stamps.first, let last = stamps.last {
            #expect(first - streamStart < .milliseconds(200), "\(first - streamStart)")
            #expect(last - streamEnded < .milliseconds(200) && streamEnded - last < .milliseconds(200))
        }
    }

    /// A burst left on a small socket is received once it holds half of what the socket may,
    /// before the kernel would drop datagrams (ENOBUFS).
    @Test func aBurstLeftOnTheSocketNeverOverrunsIt() async throws {
        let block = try #require(RealKernel.last(.memory))
        let inbox = Inbox()
        let (monitor, _) = try await RealKernel.monitorWithSocket(bufferBytes: 64 << 10) { inbox.put($0) }
        defer { monitor.stop() }
        monitor.holdMemoryBursts(.addsAndOnlines)
        let after = try RealKernel.seqnum()
        let count = 400
        for _ in 0..<count {
            try RealKernel.trigger("online", block)
            usleep(2000)
        }
        try await inbox.waitForEvent(of: block, after: try RealKernel.seqnum() - 1)
        let stream = inbox.events.filter {
            $0.devpath == block.devpath && ($0.seqnum.flatMap { UInt64($0) } ?? 0) > after
        }
        #expect(inbox.lost == 0)
        #expect(stream.count == count)
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
        #expect(
            log.fields(of: "listening for uevents").contains {
                $0["dry_run"] == "true" && $0["receive_buffer_bytes"] != nil
            })
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
        try trigger(action, file: "/sys\(device.devpath)/uevent")
    }

    static func trigger(_ action: String, file: String) throws {
        try action.write(toFile: file, atomically: false, encoding: .utf8)
    }

    /// The kernel's last uevent sequence number: any uevent numbered after it was sent later.
    static func seqnum() throws -> UInt64 {
        let text = try String(contentsOfFile: "/sys/kernel/uevent_seqnum", encoding: .utf8)
        guard let seqnum = UInt64(text.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw BadSeqnum(text: text)
        }
        return seqnum
    }

    /// A kernel-source monitor, ready, and the inode of its socket (the uevent socket this
    /// process did not have before).
    static func monitorWithSocket(
        bufferBytes: Int, _ handler: @escaping @Sendable (MonitorMessage) -> Void
    ) async throws -> (UdevMonitor, UInt64) {
        let before = Set(try ueventSocketsQueued().keys)
        let ready = Atomic<Bool>(false)
        let monitor = try UdevMonitor(options: .init(source: .kernel, receiveBufferBytes: bufferBytes)) { message in
            if case .ready = message { ready.store(true, ordering: .relaxed) }
            handler(message)
        }
        do {
            try await until { ready.load(ordering: .relaxed) }
            let new = Set(try ueventSocketsQueued().keys).subtracting(before)
            guard new.count == 1, let socket = new.first else { throw NoSocket(found: new.count) }
            return (monitor, socket)
        } catch {
            monitor.stop()
            throw error
        }
    }

    /// How many bytes a uevent socket of this process holds unreceived.
    static func queuedBytes(_ socket: UInt64) throws -> Int {
        guard let bytes = try ueventSocketsQueued()[socket] else { throw NoSocket(found: 0) }
        return bytes
    }

    /// This process's uevent sockets (NETLINK_KOBJECT_UEVENT, 15) by inode, and the bytes each
    /// holds unreceived, from /proc/net/netlink.
    static func ueventSocketsQueued() throws -> [UInt64: Int] {
        let files = FileManager.default
        let ours = Set(
            try files.contentsOfDirectory(atPath: "/proc/self/fd").compactMap { fd -> UInt64? in
                guard let link = try? files.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(fd)"),
                    link.hasPrefix("socket:[")
                else { return nil }
                return UInt64(link.dropFirst(8).dropLast())
            })
        let lines = try String(contentsOfFile: "/proc/net/netlink", encoding: .utf8).split(separator: "\n")
        let header = lines.first?.split(separator: " ").map(String.init) ?? []
        guard let eth = header.firstIndex(of: "Eth"), let rmem = header.firstIndex(of: "Rmem"),
            let inode = header.firstIndex(of: "Inode")
        else { throw NoSocket(found: 0) }
        var queued: [UInt64: Int] = [:]
        for line in lines.dropFirst() {
            let fields = line.split(separator: " ")
            guard fields.count > max(eth, rmem, inode), fields[eth] == "15", let number = UInt64(fields[inode]),
                ours.contains(number)
            else { continue }
            queued[number] = Int(fields[rmem])
        }
        return queued
    }

    static func until(timeout: Duration = .seconds(10), _ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while !condition() {
            guard ContinuousClock.now < deadline else { throw TimedOut() }
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    struct TimedOut: Error {}
    struct NoSocket: Error { let found: Int }
    struct BadSeqnum: Error { let text: String }
}

/// Collects what a monitor hands on, from its thread.
final class Inbox: Sendable {
    private let messages = Locked<[MonitorMessage]>([])

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

    var lost: Int { messages.withLock { $0.count { $0 == .eventsLost } } }

    /// Waits for an event about `device` numbered after `seqnum`: other tests may send events
    /// about the same device at the same time.
    func waitForEvent(of device: DeviceID, after seqnum: UInt64) async throws {
        try await wait { message in
            guard case .events(let batch) = message else { return false }
            return batch.contains { event in
                event.devpath == device.devpath && event.seqnum.flatMap { UInt64($0) }.map { $0 > seqnum } == true
            }
        }
    }

    func wait(_ matches: @escaping (MonitorMessage) -> Bool) async throws {
        try await RealKernel.until { messages.withLock { $0.contains(where: matches) } }
    }
}
