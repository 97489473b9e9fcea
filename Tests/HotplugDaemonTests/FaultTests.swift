import HotplugCore
import HotplugDaemon
import HotplugFixtures
import Testing

import struct SystemPackage.Errno

/// Every answer the kernel can give to an online write, injected into the fake tree, and what
/// the daemon must do about it. The retry policy here: 4 attempts, backoff from 10 us.
extension CoreDriverTests {
    struct Fault: Sendable, CustomTestStringConvertible {
        let name: String
        let device: String
        /// The kernel's answers to the first writes (nil: that write succeeds).
        let answers: [Errno?]
        /// What the daemon must end in, how many writes it makes, and what it must log.
        let state: DeviceState
        let writes: Int
        let logged: String
        var testDescription: String { name }

        static let all: [Fault] = [
            Fault(
                name: "EBUSY: retried with backoff until it goes through", device: "cpu2",
                answers: [.resourceBusy, .resourceBusy], state: .online, writes: 3,
                logged: "info cpu2 onlining -> online action=online attempts=3"),
            Fault(
                name: "EAGAIN: retried", device: "memory16",
                answers: [.resourceTemporarilyUnavailable], state: .online, writes: 2,
                logged: "info memory16 onlining -> online action=online attempts=2"),
            Fault(
                name: "EINTR: retried at once", device: "cpu2",
                answers: [.interrupted], state: .online, writes: 2,
                logged: "info cpu2 onlining -> online action=online attempts=2"),
            Fault(
                name: "ENOMEM: retried with backoff", device: "memory16",
                answers: [.noMemory, .noMemory], state: .online, writes: 3,
                logged: "info memory16 onlining -> online action=online attempts=3"),
            Fault(
                name: "EBUSY every time: gives up after 4 attempts, an error with the errno", device: "cpu2",
                answers: Array(repeating: .resourceBusy, count: 4), state: .failed, writes: 4,
                logged: "error cpu2 onlining -> failed action=online attempts=4 device=cpu2 errno=16"),
            Fault(
                name: "ENOMEM every time: gives up, an error", device: "memory16",
                answers: Array(repeating: .noMemory, count: 4), state: .failed, writes: 4,
                logged: "error memory16 onlining -> failed action=online attempts=4 device=memory16 errno=12"),
            Fault(
                name: "EIO: failed at once, not retried", device: "memory16",
                answers: [.ioError], state: .failed, writes: 1,
                logged: "error memory16 onlining -> failed action=online device=memory16 errno=5"),
            Fault(
                name: "EINVAL on a block that is not online: failed", device: "memory16",
                answers: [.invalidArgument], state: .failed, writes: 1, logged: "errno=22"),
            Fault(
                name: "EPERM: blocked, a warning, never retried", device: "cpu2",
                answers: [.notPermitted], state: .blocked, writes: 1,
                logged: "warning cpu2 onlining -> blocked action=online device=cpu2 errno=1"),
            Fault(
                name: "ENOENT: removed during the write, forgotten", device: "memory16",
                answers: [.noSuchFileOrDirectory], state: .removed, writes: 1,
                logged: "info memory16 onlining -> removed"),
            Fault(
                name: "ENODEV: removed during the write, forgotten", device: "cpu2",
                answers: [Errno(rawValue: 19)], state: .removed, writes: 1, logged: "info cpu2 onlining -> removed"),
        ]
    }

    @Test(arguments: Fault.all) func theKernelsAnswer(_ fault: Fault) throws {
        let engine = engine { $0.memory.onlineType = .onlineMovable }
        try engine.start()
        let id = DeviceID(name: fault.device)!
        if id.kind == .cpu { try tree.addCPU(id.index, online: false) } else { try tree.addMemory(id.index) }
        kernel.inject(fault.answers, into: fault.device)
        engine.handle([Self.event("add", fault.device)])
        #expect(kernel.writes.count == fault.writes)
        // A removed device is no longer listed.
        #expect(engine.core.status().first { $0.device == fault.device }?.state ?? .removed == fault.state)
        #expect(log.contains(fault.logged), "\(log.all.filter { $0.contains(fault.device) })")
        // A failure is tried again a second later (the kernel's answers are used up by then, and
        // the write goes through); anything else is not retried until something changes.
        engine.tick(now: .now + .seconds(2))
        let retried = fault.state == .failed
        #expect(kernel.writes.count == fault.writes + (retried ? 1 : 0))
        if retried {
            #expect(engine.core.status().first { $0.device == fault.device }?.state == .online)
            #expect(log.has(.info, "trying again to online a device that failed", ["device": fault.device]))
        }
    }

    /// Memory pressure at hot-add: ENOMEM for ten seconds, then the memory comes online, tried
    /// again at 1, 2, 4 and 8 s after the first failure, never given up on.
    @Test func aDeviceThatFailsIsTriedAgainWithBackoffUntilItGoesOnline() throws {
        let engine = engine { $0.memory.onlineType = .onlineMovable }
        try engine.start()
        try tree.addMemory(16)
        let start = ContinuousClock.now
        kernel.inject(Array(repeating: .noMemory, count: 4 * 4), into: "memory16")  // Four writes of four attempts.
        engine.handle([Self.event("add", "memory16")], now: start)
        var deadlines: [Duration] = []
        while let deadline = engine.nextDeadline, deadline - start < .seconds(60),
            engine.core.status().first(where: { $0.device == "memory16" })?.state != .online
        {
            deadlines.append(deadline - start)
            engine.tick(now: deadline)
        }
        #expect(deadlines == [.seconds(1), .seconds(3), .seconds(7), .seconds(15)])
        #expect(tree.state("memory16") == "online")
        #expect(kernel.writes.count == 4 * 4 + 1)
        #expect(log.count("onlining -> failed") == 4)
        #expect(engine.nextDeadline == nil)
    }

    /// A write that takes a second (memory onlining can) holds up nothing that follows it:
    /// the events behind it are handled when it returns, none lost.
    @Test func aSlowWriteDelaysButLosesNothing() throws {
        let engine = engine { $0.memory.onlineType = .onlineMovable }
        try engine.start()
        try tree.addMemory(16)
        try tree.addCPU(2, online: false)
        kernel.delay("memory16", by: .seconds(1))
        let started = ContinuousClock.now
        engine.handle([Self.event("add", "memory16"), Self.event("add", "cpu2")])
        #expect(ContinuousClock.now - started >= .seconds(1))
        #expect(tree.state("memory16") == "online" && tree.state("cpu2") == "1")
        #expect(
            engine.core.status().filter { ["memory16", "cpu2"].contains($0.device) }.allSatisfy { $0.state == .online })
    }

    /// Sysfs changes without an event reaching the daemon (the event lost, or never sent): the
    /// next rescan takes sysfs as the truth.
    @Test func aStateChangedBehindTheDaemonsBackIsTakenFromSysfs() throws {
        let engine = engine()
        try engine.start()
        try tree.addCPU(2, online: false)
        try tree.addCPU(3, online: false)
        engine.handle([Self.event("add", "cpu2"), Self.event("add", "cpu3")])
        // cpu2 taken offline, cpu3 removed, cpu4 added and cpu5 added and onlined, all unseen.
        try tree.write("devices/system/cpu/cpu2/online", "0")
        try tree.remove("cpu3")
        try tree.addCPU(4, online: false)
        try tree.addCPU(5, online: true)
        let writes = kernel.writes.count
        engine.eventsLost()
        let states = Dictionary(uniqueKeysWithValues: engine.core.status().map { ($0.device, $0.state) })
        #expect(states["cpu2"] == .offline, "somebody else took it offline: left so")
        #expect(engine.core.status().first { $0.device == "cpu2" }?.intent?.origin == .observed)
        #expect(
            states["cpu3"] == nil && log.has(.info, "cpu3 online -> removed", ["action": "rescan", "kind": "removed"]),
            "gone: forgotten")
        #expect(states["cpu4"] == .online && tree.state("cpu4") == "1", "a new device found offline is onlined")
        #expect(states["cpu5"] == .online)
        #expect(kernel.writes.count == writes + 1, "one write: cpu4's")
    }
}
