import HotplugFixtures
import Testing

@testable import HotplugCore

/// The core when the kernel onlines memory inside the add (see `MemoryOnlining`): it watches,
/// logs where each block went, and onlines only what the kernel left offline, with the kernel's type.
@Suite struct KernelModeCoreTests {
    typealias Machine = DecisionCoreTests.Machine
    static let start = DecisionCoreTests.start
    static let autoMovable = MemoryOnlining.kernel(
        KernelOnlineSettings([.autoOnlineBlocks: "online", .onlinePolicy: "auto-movable"]))

    @discardableResult
    static func run(
        _ core: inout DecisionCore, _ machine: inout Machine, _ effects: [Effect],
        alreadyThere: (DeviceID) -> Bool = { _ in false }
    ) -> [Effect] {
        DecisionCoreTests.run(&core, &machine, effects, now: core.now, alreadyThere: alreadyThere)
    }

    static func started(_ machine: inout Machine) -> DecisionCore {
        var core = DecisionCore(config: Config(), now: start)
        core.memoryOnlining = autoMovable
        run(&core, &machine, core.start(act: true, now: start))
        return core
    }

    static func transitions(_ effects: [Effect]) -> [[String: String]] {
        effects.compactMap {
            if case .log(let record) = $0, record.metadata["to"] != nil { record.metadata } else { nil }
        }
    }

    static func writes(_ effects: [Effect]) -> [String] { DecisionCoreTests.writes(effects) }

    @Test func blocksTheKernelOnlinedAreLoggedWithZoneNodeAndWhoNotWritten() {
        var machine = DecisionCoreTests.bootMachine()
        var core = Self.started(&machine)
        // The kernel onlined the DIMM before its add events were read.
        for index in 64..<66 { machine.add(memory: index, zones: ["Movable"], dimm: "PNP0C80:00", online: true) }
        let events = (64..<66).map { FakeSysfsTree.event("add", "memory\($0)", seqnum: $0) }
        let effects = Self.run(&core, &machine, core.receive(events, now: Self.start))
        #expect(Self.writes(effects).isEmpty)
        let online = Self.transitions(effects).filter { $0["to"] == "online" }
        #expect(online.map { $0["device"] } == ["memory64", "memory65"])
        #expect(online.allSatisfy { $0["by"] == "kernel" && $0["zone"] == "Movable" && $0["node"] == "0" })
        let operations = effects.compactMap { if case .finished(let operation) = $0 { operation } else { nil } }
        #expect(operations.count == 2 && operations.allSatisfy(\.byKernel))
    }

    @Test func anOnlineEventInTheSameBurstIsLoggedWithTheZoneItWentTo() {
        var machine = DecisionCoreTests.bootMachine()
        var core = Self.started(&machine)
        machine.add(memory: 64, zones: ["Movable"], dimm: "PNP0C80:00", online: true)
        let events = [
            FakeSysfsTree.event("add", "memory64", seqnum: 1), FakeSysfsTree.event("online", "memory64", seqnum: 2),
        ]
        let effects = Self.run(&core, &machine, core.receive(events, now: Self.start))
        #expect(Self.writes(effects).isEmpty)
        let online = Self.transitions(effects).filter { $0["to"] == "online" }
        #expect(online.count == 1)
        #expect(
            online.first?["zone"] == "Movable" && online.first?["by"] == "kernel" && online.first?["action"] == "online"
        )
    }

    @Test func timesToOnlineCountFromTheEventsAsReceivedNotFromTheBurst() throws {
        // Held and taken as one burst: the add received at 0 ms and the online at 30 ms still
        // make 30 ms, though the core sees both at 100 ms.
        var machine = DecisionCoreTests.bootMachine()
        var core = Self.started(&machine)
        machine.add(memory: 64, zones: ["Movable"], dimm: "PNP0C80:00", online: true)
        var add = FakeSysfsTree.event("add", "memory64", seqnum: 1)
        add.receivedAt = Self.start
        var online = FakeSysfsTree.event("online", "memory64", seqnum: 2)
        online.receivedAt = Self.start + .milliseconds(30)
        let effects = Self.run(&core, &machine, core.receive([add, online], now: Self.start + .milliseconds(100)))
        let operations = effects.compactMap { if case .finished(let operation) = $0 { operation } else { nil } }
        #expect(operations.map(\.sinceAdded) == [.milliseconds(30)])
        #expect(core.status().first { $0.device == "memory64" }?.secondsToOnline == 0.03)
        let hotAdd = try #require(core.lastHotAdd)
        #expect((hotAdd.range, hotAdd.secondsToOnline, hotAdd.onlinedBy) == ("memory64", 0.03, "kernel"))
    }

    @Test func aDIMMAddedAndOnlinedInOneBurstIsReadOnce() {
        // The daemon holds a DIMM's events while the kernel adds it (CoreLoop) and takes them as one burst.
        var machine = DecisionCoreTests.bootMachine()
        var core = Self.started(&machine)
        for index in 64..<72 { machine.add(memory: index, zones: ["Movable"], dimm: "PNP0C80:00", online: true) }
        let events =
            (64..<72).map { FakeSysfsTree.event("add", "memory\($0)", seqnum: $0) }
            + (64..<72).map { FakeSysfsTree.event("online", "memory\($0)", seqnum: 100 + $0) }
        let effects = Self.run(&core, &machine, core.receive(events, now: Self.start))
        let reads = effects.compactMap { if case .read(let request) = $0 { request.what } else { nil } }
        let ids = (64..<72).map { DeviceID(kind: .memory, index: $0)! }
        #expect(
            reads.filter { if case .devices = $0 { true } else { false } } == [.devices(ids, zonesWithoutNode: false)])
        let online = Self.transitions(effects).filter { $0["to"] == "online" }
        #expect(online.count == 8 && online.allSatisfy { $0["zone"] == "Movable" && $0["by"] == "kernel" })
    }

    @Test func aBlockReadOfflineWhileTheKernelAddsWaitsForItsOnlineEvent() {
        var machine = DecisionCoreTests.bootMachine()
        var core = Self.started(&machine)
        machine.add(memory: 64, dimm: "PNP0C80:00")  // Read before the kernel reached it.
        let added = Self.run(&core, &machine, core.receive([FakeSysfsTree.event("add", "memory64")], now: Self.start))
        #expect(Self.writes(added).isEmpty, "no write competes with the kernel's add")
        #expect(core.nextDeadline == Self.start + .seconds(1))
        machine.add(memory: 64, zones: ["Movable"], dimm: "PNP0C80:00", online: true)
        let onlined = Self.run(
            &core, &machine, core.receive([FakeSysfsTree.event("online", "memory64")], now: Self.start))
        #expect(Self.transitions(onlined).last?["by"] == "kernel")
        #expect(core.nextDeadline == nil)
    }

    @Test func aBlockStillOfflineAfterTheAddIsWrittenAndFoundOnline() {
        var machine = DecisionCoreTests.bootMachine()
        var core = Self.started(&machine)
        machine.add(memory: 64, dimm: "PNP0C80:00")
        Self.run(&core, &machine, core.receive([FakeSysfsTree.event("add", "memory64")], now: Self.start))
        // The online event was lost, say: the quiet deadline looks again, and the write tells.
        let late = Self.start + .seconds(1)
        let effects = Self.run(&core, &machine, core.tick(now: late), alreadyThere: { _ in true })
        // The kernel's own type, no waiting for the DIMM, no walk to its other blocks.
        #expect(Self.writes(effects) == ["memory64=online"])
        #expect(Self.transitions(effects).last?["by"] == "kernel")
        #expect(!effects.contains { if case .log(let record) = $0 { record.message.contains("left") } else { false } })
    }

    @Test func aBlockTheKernelLeftOfflineIsOnlinedAndSaidSo() {
        var machine = DecisionCoreTests.bootMachine()
        var core = Self.started(&machine)
        machine.add(memory: 64, dimm: "PNP0C80:00")
        Self.run(&core, &machine, core.receive([FakeSysfsTree.event("add", "memory64")], now: Self.start))
        let effects = Self.run(&core, &machine, core.tick(now: Self.start + .seconds(1)))
        #expect(Self.writes(effects) == ["memory64=online"])
        #expect(Self.transitions(effects).last?["by"] == "hotplugd")
        #expect(
            effects.contains {
                if case .log(let record) = $0 {
                    record.message == "the kernel left a new block offline; hotplugd onlined it"
                        && record.metadata["kind"] == "memory-onlining"
                } else {
                    false
                }
            })
    }

    @Test func coldplugWritesTheKernelsTypeAndSaysNothingOfTheKernel() {
        var machine = DecisionCoreTests.bootMachine()
        machine.add(memory: 64, dimm: "PNP0C80:00")
        var core = DecisionCore(config: Config(), now: Self.start)
        core.memoryOnlining = .kernel(KernelOnlineSettings([.autoOnlineBlocks: "online_movable"]))
        let effects = Self.run(&core, &machine, core.start(act: true, now: Self.start))
        #expect(Self.writes(effects) == ["memory64=online_movable"])
        #expect(Self.transitions(effects).allSatisfy { $0["by"] == nil })
    }

    @Test func whenTheKernelPicksZonesAnAutoMovableBlockIsWrittenOnlineAtOnce() {
        var machine = DecisionCoreTests.bootMachine()
        var core = DecisionCore(config: Config(), now: Self.start)
        core.memoryOnlining = .userspace(
            reason: "a node rule", zones: KernelOnlineSettings([.onlinePolicy: "auto-movable"]))
        Self.run(&core, &machine, core.start(act: true, now: Self.start))
        machine.add(memory: 64)  // No DIMM link, and none will come: nothing to wait for.
        let effects = Self.run(&core, &machine, core.receive([FakeSysfsTree.event("add", "memory64")], now: Self.start))
        #expect(Self.writes(effects) == ["memory64=online"])
        #expect(core.nextDeadline == nil)
    }

    @Test func aNodeRuleWaitsForTheNodeLinkNotForTheClock() {
        var config = Config()
        config.memory.onlineType = .onlineKernel
        config.memory.nodes = [.init(node: 1, onlineType: .onlineMovable)]
        var machine = DecisionCoreTests.bootMachine()
        var core = DecisionCore(config: config, now: Self.start)
        Self.run(&core, &machine, core.start(act: true, now: Self.start))
        machine.add(memory: 64, node: nil)
        let first = Self.run(&core, &machine, core.receive([FakeSysfsTree.event("add", "memory64")], now: Self.start))
        #expect(Self.writes(first).isEmpty)
        // Long past the old 250 ms: still waiting, since the link is sure to come.
        let later = Self.start + .milliseconds(900)
        #expect(Self.writes(Self.run(&core, &machine, core.tick(now: later))).isEmpty)
        machine.add(memory: 64, node: 1)
        let linked = Self.run(&core, &machine, core.tick(now: later + .milliseconds(5)))
        #expect(Self.writes(linked) == ["memory64=online_movable"])
    }

    @Test func aNodeLinkThatNeverComesIsGivenUpOnAndSaidSo() {
        var config = Config()
        config.memory.onlineType = .onlineKernel
        config.memory.nodes = [.init(node: 1, onlineType: .onlineMovable)]
        var machine = DecisionCoreTests.bootMachine()
        var core = DecisionCore(config: config, now: Self.start)
        Self.run(&core, &machine, core.start(act: true, now: Self.start))
        machine.add(memory: 64, node: nil)
        Self.run(&core, &machine, core.receive([FakeSysfsTree.event("add", "memory64")], now: Self.start))
        let late = Self.start + .seconds(2) + .milliseconds(10)
        let effects = Self.run(&core, &machine, core.tick(now: late))
        #expect(Self.writes(effects) == ["memory64=online_kernel"])
        #expect(
            effects.contains {
                if case .log(let record) = $0 {
                    record.message.hasPrefix("decided without a NUMA node") && record.metadata["devices"] == "memory64"
                } else {
                    false
                }
            })
    }

    @Test func aBlockDecidedWithoutItsDIMMIsSaidSo() {
        var machine = DecisionCoreTests.bootMachine()
        var core = DecisionCore(config: Config(), now: Self.start)
        Self.run(&core, &machine, core.start(act: true, now: Self.start))
        machine.add(memory: 64)
        Self.run(&core, &machine, core.receive([FakeSysfsTree.event("add", "memory64")], now: Self.start))
        let late = Self.start + .milliseconds(300)
        let effects = Self.run(&core, &machine, core.tick(now: late))
        #expect(Self.writes(effects) == ["memory64=online_movable"])
        #expect(
            effects.contains {
                if case .log(let record) = $0 {
                    record.message == "decided as memory devices of their own: no DIMM (firmware_node) link"
                } else {
                    false
                }
            })
    }

    @Test func userspaceModeSaysNothingOfWho() {
        var machine = DecisionCoreTests.bootMachine()
        var core = DecisionCore(config: Config(), now: Self.start)
        Self.run(&core, &machine, core.start(act: true, now: Self.start))
        machine.add(memory: 64, dimm: "PNP0C80:00")
        let effects = Self.run(&core, &machine, core.receive([FakeSysfsTree.event("add", "memory64")], now: Self.start))
        #expect(Self.writes(effects) == ["memory64=online_movable"])
        #expect(Self.transitions(effects).allSatisfy { $0["by"] == nil })
    }
}
