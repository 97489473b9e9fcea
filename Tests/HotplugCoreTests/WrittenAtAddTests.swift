import HotplugFixtures
import Testing

@testable import HotplugCore

/// Userspace onlining of blocks whose decision needs nothing from sysfs: written at their `add`,
/// read after the write (`DecisionCore.decidedWithoutReading`).
@Suite struct WrittenAtAddTests {
    typealias Machine = DecisionCoreTests.Machine
    static let start = DecisionCoreTests.start

    static func started(_ config: Config, _ machine: inout Machine, zones: Bool = false) -> DecisionCore {
        var core = DecisionCore(config: config, now: start)
        core.memoryOnlining = .userspace(
            reason: "test", zones: zones ? KernelOnlineSettings([.onlinePolicy: "auto-movable"]) : nil)
        DecisionCoreTests.run(&core, &machine, core.start(act: true, now: start))
        return core
    }

    /// The `what` of every read, in order.
    static func reads(_ effects: [Effect]) -> [ReadRequest.What] {
        effects.compactMap { if case .read(let request) = $0 { request.what } else { nil } }
    }

    static func movable() -> Config {
        var config = Config()
        config.memory.onlineType = .onlineMovable
        return config
    }

    @Test func anExplicitTypeIsWrittenBeforeTheBlockIsRead() throws {
        var machine = DecisionCoreTests.bootMachine()
        var core = Self.started(Self.movable(), &machine)
        for index in 64..<66 { machine.add(memory: index, node: 1, dimm: "PNP0C80:00") }
        let events = (64..<66).map { FakeSysfsTree.event("add", "memory\($0)", seqnum: $0) }
        let effects = DecisionCoreTests.run(&core, &machine, core.receive(events, now: Self.start))
        #expect(DecisionCoreTests.writes(effects) == ["memory64=online_movable", "memory65=online_movable"])
        // Only the dax devices before the first write (dax memory is left to daxctl by default).
        let firstWrite = try #require(effects.firstIndex { if case .write = $0 { true } else { false } })
        #expect(Self.reads(Array(effects[..<firstWrite])) == [.daxRAM])
        // After it, where the block went: its line and the status say node, zone and DIMM.
        let id = DeviceID(kind: .memory, index: 64)!
        #expect(core.records[id]?.state == .online)
        #expect(core.records[id]?.node == 1)
        #expect(core.records[id]?.zone == .movable)
        #expect(core.status().first { $0.device == "memory64" }?.dimm != nil)
        let line = effects.compactMap {
            if case .log(let record) = $0, record.metadata["to"] == "online" { record } else { nil }
        }
        #expect(line.first?.metadata["node"] == "1")
        #expect(line.first?.metadata["zone"] == "Movable")
    }

    @Test func daxMemoryIsToldFromTheDaxDevicesAlone() {
        var machine = DecisionCoreTests.bootMachine()
        var core = Self.started(Self.movable(), &machine)
        machine.add(memory: 64)
        machine.daxRAM = [(64 << 27)...((65 << 27) - 1)]
        let effects = DecisionCoreTests.run(
            &core, &machine, core.receive([FakeSysfsTree.event("add", "memory64")], now: Self.start))
        #expect(DecisionCoreTests.writes(effects).isEmpty)
        // Decided from the dax devices alone; the block is read afterwards, for the status.
        #expect(
            Self.reads(effects) == [.daxRAM, .devices([DeviceID(kind: .memory, index: 64)!], zonesWithoutNode: false)])
        #expect(core.records[DeviceID(kind: .memory, index: 64)!]?.managed == false)
    }

    @Test func withDaxMemoryOnlinedByPolicyNothingIsReadBeforeTheWrite() throws {
        var config = Self.movable()
        config.memory.dax = .online
        var machine = DecisionCoreTests.bootMachine()
        var core = Self.started(config, &machine)
        machine.add(memory: 64)
        let effects = core.receive([FakeSysfsTree.event("add", "memory64")], now: Self.start)
        let io = effects.filter {
            switch $0 {
            case .read, .write: true
            default: false
            }
        }
        #expect(io == [.write(DeviceID(kind: .memory, index: 64)!, .onlineMovable)])
    }

    @Test func theKernelsAutoMovableZoneIsWrittenAtTheAdd() {
        var machine = DecisionCoreTests.bootMachine()
        var core = Self.started(Config(), &machine, zones: true)
        machine.add(memory: 64)
        let effects = DecisionCoreTests.run(
            &core, &machine, core.receive([FakeSysfsTree.event("add", "memory64")], now: Self.start))
        #expect(DecisionCoreTests.writes(effects) == ["memory64=online"])
        #expect(Self.reads(effects).first == .daxRAM)
    }

    @Test func theBlocksAfterAKernelPickedBlockAreWrittenWithoutTheirEvents() {
        // A virtio-mem device adds blocks ahead of their onlining; a DIMM's are all there.
        var machine = DecisionCoreTests.bootMachine()
        var core = Self.started(Config(), &machine, zones: true)
        for index in 64..<67 { machine.add(memory: index) }
        let effects = DecisionCoreTests.run(
            &core, &machine, core.receive([FakeSysfsTree.event("add", "memory64")], now: Self.start))
        #expect(DecisionCoreTests.writes(effects) == ["memory64=online", "memory65=online", "memory66=online"])
        // The events that follow change nothing.
        let late = (65..<67).map { FakeSysfsTree.event("add", "memory\($0)", seqnum: $0) }
        #expect(
            DecisionCoreTests.writes(DecisionCoreTests.run(&core, &machine, core.receive(late, now: Self.start)))
                .isEmpty)
    }

    @Test func hotplugdsOwnAutoMovableReadsTheBlockFirst() {
        // It needs the block's zones and its DIMM.
        var machine = DecisionCoreTests.bootMachine()
        var core = Self.started(Config(), &machine)
        machine.add(memory: 64, dimm: "PNP0C80:00")
        let effects = DecisionCoreTests.run(
            &core, &machine, core.receive([FakeSysfsTree.event("add", "memory64")], now: Self.start))
        let id = DeviceID(kind: .memory, index: 64)!
        #expect(Self.reads(effects).first == .devices([id], zonesWithoutNode: false))
        #expect(DecisionCoreTests.writes(effects) == ["memory64=online_movable"])
    }

    @Test func aNodeRuleLooksOnlyForTheNodeAndWaitsForIt() {
        var config = Self.movable()
        config.memory.nodes = [.init(node: 1, onlineType: .onlineKernel)]
        var machine = DecisionCoreTests.bootMachine()
        var core = Self.started(config, &machine)
        // The kernel links a range's blocks to their node after creating them all, in order.
        for index in 64..<67 { machine.add(memory: index, node: nil) }
        let events = (64..<67).map { FakeSysfsTree.event("add", "memory\($0)", seqnum: $0) }
        let first = DecisionCoreTests.run(&core, &machine, core.receive(events, now: Self.start))
        let blocks = (64..<67).map { DeviceID(kind: .memory, index: $0)! }
        #expect(Self.reads(first) == [.daxRAM, .nodes(blocks, hint: nil)])
        #expect(DecisionCoreTests.writes(first).isEmpty)
        machine.add(memory: 64, node: 1)
        let poll = Self.start + .milliseconds(5)
        let second = DecisionCoreTests.run(&core, &machine, core.tick(now: poll), now: poll)
        #expect(DecisionCoreTests.writes(second) == ["memory64=online_kernel"])
        #expect(Self.reads(second).first == .nodes(blocks, hint: nil))
        for index in 65..<67 { machine.add(memory: index, node: 1) }
        let later = poll + .milliseconds(5)
        let third = DecisionCoreTests.run(&core, &machine, core.tick(now: later), now: later)
        #expect(DecisionCoreTests.writes(third) == ["memory65=online_kernel", "memory66=online_kernel"])
        // The hint is the block before's node, now the rule's node.
        #expect(Self.reads(third).first == .nodes(Array(blocks[1...]), hint: 1))
        #expect(core.nextDeadline == nil)
        #expect(core.records[blocks[2]]?.zone == .normal)
        #expect(!Self.reads(first + second + third).contains { if case .devices = $0 { true } else { false } })
    }

    @Test func aBlockLeftOfflineIsReadForTheStatus() {
        var leave = Self.movable()
        leave.memory.autoOnline = false
        for (config, dryRun) in [(leave, false), (Self.movable(), true)] {
            var machine = DecisionCoreTests.bootMachine()
            var options = DecisionCore.Options()
            options.dryRun = dryRun
            var core = DecisionCore(config: config, options: options, now: Self.start)
            core.memoryOnlining = .userspace(reason: "test")
            DecisionCoreTests.run(&core, &machine, core.start(act: true, now: Self.start))
            machine.add(memory: 64, node: 1)
            let effects = DecisionCoreTests.run(
                &core, &machine, core.receive([FakeSysfsTree.event("add", "memory64")], now: Self.start))
            #expect(DecisionCoreTests.writes(effects).isEmpty)
            let id = DeviceID(kind: .memory, index: 64)!
            #expect(Self.reads(effects).last == .devices([id], zonesWithoutNode: false))
            #expect(core.records[id]?.node == 1)
            #expect(core.records[id]?.block?.validZones == [.normal, .movable])
            #expect(core.records[id]?.state == .offline)
        }
    }

    @Test func aBlockGoneBeforeItsWriteIsRemovedNotFailed() {
        var machine = DecisionCoreTests.bootMachine()
        var core = Self.started(Self.movable(), &machine)
        let effects = DecisionCoreTests.run(
            &core, &machine, core.receive([FakeSysfsTree.event("add", "memory64")], now: Self.start),
            outcome: { _ in .gone })
        #expect(DecisionCoreTests.writes(effects) == ["memory64=online_movable"])
        let state = core.records[DeviceID(kind: .memory, index: 64)!]?.state
        #expect(state == .removed)
        #expect(core.retries.isEmpty)
    }
}
