import HotplugFixtures
import Testing

@testable import HotplugCore

/// Memory a driver added and manages itself (virtio-mem, dax/kmem), told from the firmware's
/// memory map: when its driver takes it back, that is nobody's intent.
@Suite struct DriverManagedMemoryTests {
    typealias Machine = DecisionCoreTests.Machine
    static let start = DecisionCoreTests.start
    static let block = 128 << 20

    /// Boot memory (blocks 0-7) and a DIMM (blocks 32-39) in the memory map; virtio-mem's
    /// blocks 64-71 are not. All online.
    static func machine() -> Machine {
        var machine = DecisionCoreTests.bootMachine()
        machine.firmwareRAM = [0...(8 * block - 1), (32 * block)...(40 * block - 1)]
        for index in 32..<40 { machine.add(memory: index, zones: ["Movable"], dimm: "PNP0C80:00", online: true) }
        for index in 64..<72 { machine.add(memory: index, zones: ["Movable"], online: true) }
        return machine
    }

    static func lines(_ effects: [Effect]) -> [LogRecord] {
        effects.compactMap { if case .log(let record) = $0, record.level > .debug { record } else { nil } }
    }

    @Test func aDriverTakingBackItsMemoryIsOneLineAndNoIntent() {
        var machine = Self.machine()
        var core = DecisionCore(config: Config(), now: Self.start)
        DecisionCoreTests.run(&core, &machine, core.start(act: true, now: Self.start))
        for index in 64..<72 { machine.devices[DeviceID(kind: .memory, index: index)!]?.state = .offline }
        let offline = (64..<72).map { FakeSysfsTree.event("offline", "memory\($0)", seqnum: $0) }
        let effects = DecisionCoreTests.run(&core, &machine, core.receive(offline, now: Self.start))
        #expect(!effects.contains { if case .persistIntent = $0 { true } else { false } })
        #expect(core.intent.entries.isEmpty)
        #expect(DecisionCoreTests.writes(effects).isEmpty)
        let said = Self.lines(effects)
        #expect(said.count == 1, "\(said)")
        #expect(said.first?.metadata["blocks"] == "memory64-71" && said.first?.metadata["count"] == "8")

        for index in 64..<72 { machine.devices[DeviceID(kind: .memory, index: index)!] = .absent }
        let remove = (64..<72).map { FakeSysfsTree.event("remove", "memory\($0)", seqnum: 100 + $0) }
        let removed = Self.lines(DecisionCoreTests.run(&core, &machine, core.receive(remove, now: Self.start)))
        #expect(removed.map(\.message) == ["memory removed by the driver that added it"], "\(removed)")
    }

    /// A row of writes, performed back to back and answered one by one as `CoreDriver` does, has
    /// the memory map read once, after its last answer: each reading is a listing, and a
    /// virtio-mem block is in no entry, so each block would have it read again.
    @Test func aRowOfWritesHasTheMapReadOnce() {
        var machine = Self.machine()
        var config = Config()
        config.memory.onlineType = .onlineMovable
        var core = DecisionCore(config: config, now: Self.start)
        DecisionCoreTests.run(&core, &machine, core.start(act: true, now: Self.start))
        let blocks = (72..<76).map { DeviceID(kind: .memory, index: $0)! }
        for block in blocks { machine.add(memory: block.index, zones: ["Normal", "Movable"]) }
        var effects = core.receive(
            blocks.map { FakeSysfsTree.event("add", $0.name, seqnum: $0.index) }, now: Self.start)[...]
        var performed: [(DeviceID, OnlineValue)] = []
        var answered = 0
        /// How many writes had been answered when each reading of the map was asked for.
        var mapReadings: [Int] = []
        while true {
            if let effect = effects.popFirst() {
                switch effect {
                case .read(let request):
                    if request.what == .firmwareRAM { mapReadings.append(answered) }
                    effects = (core.answer(request, machine.answer(request.what), now: Self.start) + effects)[...]
                case .write(let id, let value):
                    machine.devices[id]?.state = .online
                    performed.append((id, value))
                default:
                    break
                }
            } else if !performed.isEmpty {
                let (id, value) = performed.removeFirst()
                answered += 1
                effects =
                    core.written(id, value, outcome: .succeeded, attempts: 1, endedAt: Self.start, now: Self.start)[...]
            } else {
                break
            }
        }
        #expect(answered == blocks.count)
        #expect(mapReadings == [blocks.count])
        #expect(blocks.allSatisfy { core.driverManaged($0) })
    }

    @Test func aDIMMsOfflineIsStillSomebodysIntent() {
        var machine = Self.machine()
        var core = DecisionCore(config: Config(), now: Self.start)
        DecisionCoreTests.run(&core, &machine, core.start(act: true, now: Self.start))
        machine.devices[DeviceID(kind: .memory, index: 33)!]?.state = .offline
        let effects = DecisionCoreTests.run(
            &core, &machine, core.receive([FakeSysfsTree.event("offline", "memory33")], now: Self.start))
        #expect(core.intent[DeviceID(kind: .memory, index: 33)!]?.origin == .observed)
        #expect(Self.lines(effects).contains { $0.message.hasPrefix("taken offline by somebody else") })
    }

    @Test func withoutAMemoryMapEveryOfflineIsSomebodys() {
        var machine = Self.machine()
        machine.firmwareRAM = nil
        var core = DecisionCore(config: Config(), now: Self.start)
        DecisionCoreTests.run(&core, &machine, core.start(act: true, now: Self.start))
        machine.devices[DeviceID(kind: .memory, index: 64)!]?.state = .offline
        DecisionCoreTests.run(
            &core, &machine, core.receive([FakeSysfsTree.event("offline", "memory64")], now: Self.start))
        #expect(core.intent[DeviceID(kind: .memory, index: 64)!]?.origin == .observed)
    }

    @Test func daxMemoryIsLeftToDaxctlUnlessConfiguredOtherwise() {
        for mode in DaxMemoryMode.allCases {
            var machine = DecisionCoreTests.bootMachine()
            machine.daxRAM = [(64 * Self.block)...(66 * Self.block - 1)]
            var config = Config()
            config.memory.dax = mode
            config.memory.onlineType = .onlineMovable
            var core = DecisionCore(config: config, now: Self.start)
            DecisionCoreTests.run(&core, &machine, core.start(act: true, now: Self.start))
            machine.add(memory: 64, zones: ["Normal", "Movable"])
            machine.add(memory: 70, zones: ["Normal", "Movable"])  // Not the dax device's.
            let events = [64, 70].map { FakeSysfsTree.event("add", "memory\($0)", seqnum: $0) }
            let effects = DecisionCoreTests.run(&core, &machine, core.receive(events, now: Self.start))
            let written = DecisionCoreTests.writes(effects).map { String($0.prefix { $0 != "=" }) }
            #expect(written == (mode == .leave ? ["memory70"] : ["memory64", "memory70"]), "\(mode)")
            if mode == .leave {
                #expect(
                    Self.lines(effects).contains {
                        $0.message == "left offline" && $0.metadata["device"] == "memory64"
                            && $0.metadata["reason"]?.contains("daxctl") == true
                    })
            }
        }
    }

    @Test func daxMemoryOnlinedByThePolicyWaitsForNoDIMM() {
        var machine = DecisionCoreTests.bootMachine()
        machine.daxRAM = [(64 * Self.block)...(66 * Self.block - 1)]
        var config = Config()
        config.memory.dax = .online
        var core = DecisionCore(config: config, now: Self.start)
        DecisionCoreTests.run(&core, &machine, core.start(act: true, now: Self.start))
        machine.add(memory: 64)
        let effects = DecisionCoreTests.run(
            &core, &machine, core.receive([FakeSysfsTree.event("add", "memory64")], now: Self.start))
        #expect(DecisionCoreTests.writes(effects) == ["memory64=online_movable"])
        #expect(core.nextDeadline == nil)
    }

    @Test func aDIMMWhoseMemoryMapEntryIsGoneIsStillNoDriversMemory() {
        var machine = Self.machine()
        var core = DecisionCore(config: Config(), now: Self.start)
        DecisionCoreTests.run(&core, &machine, core.start(act: true, now: Self.start))
        // The kernel removes the DIMM: its memory map entry goes before its offlines are read.
        machine.firmwareRAM = [0...(8 * Self.block - 1)]
        for index in 32..<40 { machine.devices[DeviceID(kind: .memory, index: index)!]?.state = .offline }
        let offline = (32..<40).map { FakeSysfsTree.event("offline", "memory\($0)", seqnum: $0) }
        let effects = DecisionCoreTests.run(&core, &machine, core.receive(offline, now: Self.start))
        #expect(!Self.lines(effects).contains { $0.message.hasPrefix("memory taken back") })
        #expect(Self.lines(effects).filter { $0.metadata["to"] == "offline" }.count == 8)
        for index in 32..<40 { machine.devices[DeviceID(kind: .memory, index: index)!] = .absent }
        let remove = (32..<40).map { FakeSysfsTree.event("remove", "memory\($0)", seqnum: 100 + $0) }
        let removed = Self.lines(DecisionCoreTests.run(&core, &machine, core.receive(remove, now: Self.start)))
        #expect(removed.filter { $0.metadata["to"] == "removed" }.count == 8)
        #expect(!removed.contains { $0.message == "memory removed by the driver that added it" })
    }

    @Test func blocksAreJudgedWhenTheyComeOnlineWithTheMapReadAgainForNewOnes() {
        var machine = DecisionCoreTests.bootMachine()
        machine.firmwareRAM = [0...(8 * Self.block - 1)]
        var core = DecisionCore(config: Config(), now: Self.start)
        core.memoryOnlining = KernelModeCoreTests.autoMovable
        DecisionCoreTests.run(&core, &machine, core.start(act: true, now: Self.start))
        // A DIMM (its map entry made by the end of its add) and a virtio-mem block, both onlined
        // by the kernel inside their add.
        machine.firmwareRAM = [0...(8 * Self.block - 1), (32 * Self.block)...(33 * Self.block - 1)]
        machine.add(memory: 32, zones: ["Movable"], dimm: "PNP0C80:00", online: true)
        machine.add(memory: 64, zones: ["Movable"], online: true)
        let added = [32, 64].map { FakeSysfsTree.event("add", "memory\($0)", seqnum: $0) }
        let effects = DecisionCoreTests.run(&core, &machine, core.receive(added, now: Self.start))
        #expect(effects.contains { if case .read(let request) = $0 { request.what == .firmwareRAM } else { false } })
        #expect(core.driverManaged(DeviceID(kind: .memory, index: 64)!))
        #expect(!core.driverManaged(DeviceID(kind: .memory, index: 32)!))
        // Its removal begun, the DIMM's entry is gone before its offline is read: still no driver's.
        machine.firmwareRAM = [0...(8 * Self.block - 1)]
        for index in [32, 64] { machine.devices[DeviceID(kind: .memory, index: index)!]?.state = .offline }
        let offline = [32, 64].map { FakeSysfsTree.event("offline", "memory\($0)", seqnum: 100 + $0) }
        DecisionCoreTests.run(&core, &machine, core.receive(offline, now: Self.start))
        #expect(core.intent[DeviceID(kind: .memory, index: 32)!]?.origin == .observed)
        #expect(core.intent[DeviceID(kind: .memory, index: 64)!] == nil)
    }
}
