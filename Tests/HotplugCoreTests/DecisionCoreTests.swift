import HotplugFixtures
import Testing

@testable import HotplugCore

/// The decision core alone: inputs in, effects out, no sysfs at all. Each test plays the owner,
/// answering reads from a table of readings and writes with the outcome it chooses.
@Suite struct DecisionCoreTests {
    static let start = ContinuousClock.now

    /// A machine described by its readings; reads are answered from it.
    struct Machine {
        var devices: [DeviceID: DeviceReading] = [:]
        /// The firmware's memory map; nil: the machine has none.
        var firmwareRAM: [ClosedRange<Int>]?
        /// The dax devices' ranges.
        var daxRAM: [ClosedRange<Int>]?

        mutating func add(
            memory index: Int, node: Int? = 0, zones: [Zone] = ["Normal", "Movable"], dimm: String? = nil,
            online: Bool = false
        ) {
            let id = DeviceID(kind: .memory, index: index)!
            let block = MemoryBlock(
                id: id, node: node, validZones: online ? [zones[0]] : zones, firmwareNode: dimm, online: online)
            devices[id] = DeviceReading(state: online ? .online : .offline, block: block)
        }

        mutating func add(cpu index: Int, online: Bool) {
            devices[DeviceID(kind: .cpu, index: index)!] = DeviceReading(state: online ? .online : .offline, node: 0)
        }

        func answer(_ what: ReadRequest.What) -> Readings {
            switch what {
            case .everything:
                return Readings(devices: devices, blockSizeBytes: 128 << 20, firmwareRAM: firmwareRAM, daxRAM: daxRAM)
            case .devices(let ids, _):
                return Readings(
                    devices: Dictionary(uniqueKeysWithValues: ids.map { ($0, devices[$0] ?? .absent) }), daxRAM: daxRAM)
            case .offlineRun(let first, let atMost):
                var readings = Readings()
                for index in first.index..<(first.index + atMost) {
                    let id = DeviceID(kind: first.kind, index: index)!
                    readings.devices[id] = DeviceReading(state: devices[id]?.state ?? .absent)
                    if readings.devices[id]?.state != .offline { break }
                }
                return readings
            case .dimm(let firmwareNode, _, _):
                return Readings(devices: devices.filter { $0.value.block?.firmwareNode == firmwareNode })
            case .onlined(let id, _, let zone):
                var reading = devices[id] ?? .absent
                if let zone { reading.block?.validZones = [zone] }
                reading.state = .online
                return Readings(devices: [id: reading])
            case .firmwareRAM:
                return Readings(firmwareRAM: firmwareRAM)
            case .daxRAM:
                return Readings(daxRAM: daxRAM)
            case .nodes(let ids, _):
                var readings = Readings()
                for id in ids.sorted() {
                    guard let node = devices[id]?.node else { break }
                    readings.nodes[id] = node
                }
                return readings
            }
        }
    }

    /// Runs effects depth-first as `CoreDriver` does, succeeding every write and recording it in
    /// `machine`; returns every effect seen, answers included, in order. `alreadyThere`: the
    /// writes the kernel refuses because it onlined the block first (the actuator's read-back);
    /// `outcome`: how each write ends (those that do not succeed leave the machine as it was).
    @discardableResult
    static func run(
        _ core: inout DecisionCore, _ machine: inout Machine, _ effects: [Effect], now: ContinuousClock.Instant = start,
        alreadyThere: (DeviceID) -> Bool = { _ in false }, outcome: (DeviceID) -> OnlineOutcome = { _ in .succeeded }
    )
        -> [Effect]
    {
        var seen: [Effect] = []
        var stack = [effects[...]]
        while !stack.isEmpty {
            guard let effect = stack[stack.count - 1].popFirst() else {
                stack.removeLast()
                continue
            }
            seen.append(effect)
            switch effect {
            case .read(let request):
                stack.append(core.answer(request, machine.answer(request.what), now: now)[...])
            case .write(let id, let value):
                let ended = outcome(id)
                if ended == .succeeded {
                    machine.devices[id]?.state = .online
                    if value == .onlineMovable { machine.devices[id]?.block?.validZones = [.movable] }
                    if value == .onlineKernel { machine.devices[id]?.block?.validZones = [.normal] }
                }
                stack.append(
                    core.written(
                        id, value, outcome: ended, attempts: 1, alreadyThere: alreadyThere(id), endedAt: now,
                        now: now)[...])
            default:
                break
            }
        }
        return seen
    }

    static func bootMachine() -> Machine {
        var machine = Machine()
        machine.add(cpu: 0, online: true)
        for index in 0..<8 { machine.add(memory: index, zones: ["Normal"], online: true) }
        return machine
    }

    static func writes(_ effects: [Effect]) -> [String] {
        effects.compactMap { if case .write(let id, let value) = $0 { "\(id)=\(value)" } else { nil } }
    }

    @Test func startReadsEverythingAndTheIntentFirst() {
        var core = DecisionCore(config: Config(), now: Self.start)
        let effects = core.start(act: true, now: Self.start)
        #expect(effects.count == 2)
        #expect(effects.first == .loadIntent)
        guard case .read(let request) = effects.last else {
            Issue.record("no read: \(effects)")
            return
        }
        #expect(request.what == .everything)
    }

    @Test func aHotAddedDIMMIsDecidedWholeFromReadingsAlone() {
        var core = DecisionCore(config: Config(), now: Self.start)
        var machine = Self.bootMachine()
        Self.run(&core, &machine, core.start(act: true, now: Self.start))
        // 1 GiB of boot memory: 301% allows 24 blocks; a DIMM of 8 fits, a second of 32 does not.
        for index in 64..<72 { machine.add(memory: index, dimm: "PNP0C80:00") }
        for index in 72..<104 { machine.add(memory: index, dimm: "PNP0C80:01") }
        let events = (64..<104).map { FakeSysfsTree.event("add", "memory\($0)", seqnum: $0) }
        let effects = Self.run(&core, &machine, core.receive(events, now: Self.start))
        #expect(
            Self.writes(effects) == (64..<72).map { "memory\($0)=online_movable" }
                + (72..<104).map { "memory\($0)=online_kernel" })
        #expect(core.records[DeviceID(kind: .memory, index: 64)!]?.zone == .movable)
        #expect(core.movablePages == [0: 8 * 32768])
    }

    @Test func aBlockWithoutItsDIMMLinkWaitsThenIsDecidedAtTheDeadline() {
        var core = DecisionCore(config: Config(), now: Self.start)
        var machine = Self.bootMachine()
        Self.run(&core, &machine, core.start(act: true, now: Self.start))
        machine.add(memory: 64)
        let first = Self.run(&core, &machine, core.receive([FakeSysfsTree.event("add", "memory64")], now: Self.start))
        #expect(Self.writes(first).isEmpty)
        let deadline = try! #require(core.nextDeadline)
        #expect(deadline <= Self.start + .milliseconds(250))
        let late = Self.start + .milliseconds(300)
        let second = Self.run(&core, &machine, core.tick(now: late), now: late)
        #expect(Self.writes(second) == ["memory64=online_movable"])
        #expect(core.nextDeadline == nil)
    }

    @Test func aDIMMWaitsForItsLastBlocksNodeBeforeItIsDecided() {
        // The kernel links blocks to their node just after their `add`: read at once, the first
        // blocks of a DIMM may have no node yet, and then no zones (`Sysfs.memoryBlock`).
        var core = DecisionCore(config: Config(), now: Self.start)
        var machine = Self.bootMachine()
        Self.run(&core, &machine, core.start(act: true, now: Self.start))
        for index in 64..<66 { machine.add(memory: index, node: nil, zones: [], dimm: "PNP0C80:00") }
        for index in 66..<70 { machine.add(memory: index, dimm: "PNP0C80:00") }
        let events = (64..<70).map { FakeSysfsTree.event("add", "memory\($0)", seqnum: $0) }
        let first = Self.run(&core, &machine, core.receive(events, now: Self.start))
        #expect(Self.writes(first).isEmpty, "the DIMM waits for its blocks without a node")
        for index in 64..<66 { machine.add(memory: index, dimm: "PNP0C80:00") }
        let later = Self.start + .milliseconds(10)
        let second = Self.run(&core, &machine, core.tick(now: later), now: later)
        #expect(Self.writes(second) == (64..<70).map { "memory\($0)=online_movable" })
        #expect(core.waiting.isEmpty)
    }

    @Test func somebodyElsesOfflineBecomesIntentStoredBeforeAnything() {
        var core = DecisionCore(config: Config(), now: Self.start)
        var machine = Self.bootMachine()
        machine.add(cpu: 1, online: true)
        Self.run(&core, &machine, core.start(act: true, now: Self.start))
        core.wallClockSeconds = 1_796_000_000
        machine.devices[DeviceID(kind: .cpu, index: 1)!]?.state = .offline
        let effects = core.receive([FakeSysfsTree.event("offline", "cpu1")], now: Self.start)
        // The intent file is read first: `hotplugd offline` writes it before it writes sysfs.
        #expect(effects.first == .loadIntent)
        let all = Self.run(&core, &machine, effects)
        let stored = all.compactMap { if case .persistIntent(let changes) = $0 { changes } else { nil } }
        #expect(
            stored == [[DeviceID(kind: .cpu, index: 1)!: OperatorIntent.Entry(origin: .observed, since: 1_796_000_000)]]
        )
        #expect(Self.writes(all).isEmpty)
    }

    @Test func statusSaysTheErrnoSinceWhenAndTheLastHotAddsTimeToOnline() throws {
        var core = DecisionCore(config: Config(), now: Self.start)
        var machine = Self.bootMachine()
        Self.run(&core, &machine, core.start(act: true, now: Self.start))
        core.wallClockSeconds = 1_796_000_000
        machine.add(cpu: 3, online: false)
        Self.run(
            &core, &machine, core.receive([FakeSysfsTree.event("add", "cpu3")], now: Self.start),
            outcome: { _ in .failed(errno: 5) })
        let failed = try #require(core.status().first { $0.device == "cpu3" })
        #expect(failed.state == .failed)
        #expect(failed.errno == 5)
        #expect(failed.since == 1_796_000_000)
        #expect(failed.secondsToOnline == nil)

        // A DIMM's blocks: their add events at 60 s, the reads and writes done 400 ms later.
        core.wallClockSeconds = 1_796_000_060
        for index in 64..<72 { machine.add(memory: index, dimm: "PNP0C80:00") }
        let events = (64..<72).map { FakeSysfsTree.event("add", "memory\($0)", seqnum: $0) }
        let addedAt = Self.start + .seconds(60)
        let effects = Self.run(&core, &machine, core.receive(events, now: addedAt), now: addedAt + .milliseconds(400))
        #expect(Self.writes(effects).count == 8)
        let hotAdd = try #require(core.lastHotAdd)
        #expect(hotAdd.range == "memory64-71 (8 blocks)")
        #expect(hotAdd.secondsToOnline == 0.4)
        #expect(hotAdd.finished == 1_796_000_060)
        #expect(hotAdd.onlinedBy == "hotplugd")
        let block = try #require(core.status().first { $0.device == "memory71" })
        #expect(block.secondsToOnline == 0.4)
        #expect(block.since == 1_796_000_060)
        #expect(block.errno == nil)
        // A CPU hot-added a minute later is the next hot-add, not part of the DIMM's.
        machine.add(cpu: 4, online: false)
        let later = Self.start + .seconds(120)
        Self.run(&core, &machine, core.receive([FakeSysfsTree.event("add", "cpu4")], now: later), now: later)
        #expect(core.lastHotAdd?.range == "cpu4")
        #expect(core.lastHotAdd?.secondsToOnline == 0)
    }

    @Test func otherReadFailuresAreSaidButNotWithoutBound() {
        var core = DecisionCore(config: Config(), now: Self.start)
        var machine = Self.bootMachine()
        Self.run(&core, &machine, core.start(act: true, now: Self.start))
        var readings = Readings()
        readings.otherFailures = ["cannot read the firmware's memory map (EIO)"]
        var warnings: [LogRecord] = []
        for _ in 0..<10 {
            let effects = core.answer(ReadRequest(.firmwareRAM, for: .following), readings, now: Self.start)
            warnings += effects.compactMap {
                if case .log(let record) = $0, record.level == .warning { record } else { nil }
            }
        }
        #expect(warnings.count == 5)
        #expect(warnings.allSatisfy { $0.message == "cannot read the firmware's memory map (EIO)" })
    }

    @Test func aRecordedTraceReplaysToTheSameEffects() {
        func replay() -> [Effect] {
            var core = DecisionCore(config: Config(), now: Self.start)
            var machine = Self.bootMachine()
            var all = Self.run(&core, &machine, core.start(act: true, now: Self.start))
            for index in 64..<80 { machine.add(memory: index, dimm: "PNP0C80:0\(index / 72)") }
            machine.add(cpu: 3, online: false)
            let events =
                (64..<80).map { FakeSysfsTree.event("add", "memory\($0)", seqnum: $0) }
                + [FakeSysfsTree.event("add", "cpu3", seqnum: 99), FakeSysfsTree.event("frobnicate", "cpu3")]
            all += Self.run(&core, &machine, core.receive(events, now: Self.start + .milliseconds(1)))
            all += Self.run(&core, &machine, core.eventsLost(now: Self.start + .milliseconds(2)))
            return all
        }
        let first = replay()
        #expect(first == replay())
        #expect(Self.writes(first).count == 17)
    }

    @Test func queriesNeitherReadNorChange() {
        var core = DecisionCore(config: Config(), now: Self.start)
        var machine = Self.bootMachine()
        machine.add(memory: 64, dimm: "PNP0C80:00")
        Self.run(&core, &machine, core.start(act: false, now: Self.start))
        let before = core.records
        let status = core.status()
        #expect(status.first { $0.device == "memory64" }?.policy == "online (online_movable)")
        #expect(
            core.onlineValues(for: [DeviceID(kind: .memory, index: 64)!]) == [
                DeviceID(kind: .memory, index: 64)!: .onlineMovable
            ])
        #expect(core.records == before)
    }
}
