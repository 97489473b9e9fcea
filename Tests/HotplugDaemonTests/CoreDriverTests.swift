import HotplugCore
import HotplugDaemon
import HotplugFixtures
import Testing

/// The decision core driven against a sysfs tree in a temporary directory, with events fed in
/// as the monitor hands them on: decisions together with the reads and writes they cause.
@Suite struct CoreDriverTests {
    let tree: FakeSysfsTree
    let kernel: FakeKernel
    let log = LogCapture()

    init() throws {
        tree = try FakeSysfsTree.smallMachine()
        kernel = try FakeKernel(tree: tree)
    }

    func engine(
        _ configure: (inout Config) -> Void = { _ in }, options: (inout DecisionCore.Options) -> Void = { _ in },
        intentStore: IntentStore? = nil
    ) -> CoreDriver {
        var config = Config()
        configure(&config)
        var coreOptions = DecisionCore.Options()
        options(&coreOptions)
        return CoreDriver(
            config: config, sysfs: kernel, options: coreOptions,
            retry: .init(attempts: 4, firstDelay: .microseconds(10), maxDelay: .microseconds(100)),
            intentStore: intentStore, logger: log.logger())
    }

    static func event(_ action: String, _ device: String) -> RawUevent { FakeSysfsTree.event(action, device) }

    // MARK: - Coldplug

    @Test func coldplugOnlinesWhatIsOfflineAtStart() throws {
        try tree.addCPU(2, online: false)
        try tree.addCPU(3, online: false)
        for index in 8..<16 { try tree.addMemory(index, dimm: "PNP0C80:00") }
        try engine().start()
        #expect(tree.state("cpu2") == "1")
        #expect(tree.state("cpu3") == "1")
        #expect((8..<16).allSatisfy { tree.state("memory\($0)") == "online" && tree.zones("memory\($0)") == "Movable" })
        #expect(kernel.writes == ["cpu2=1", "cpu3=1"] + (8..<16).map { "memory\($0)=online_movable" })
        #expect(log.contains("debug cpu2 offline -> onlining"))
        #expect(log.contains("info cpu2 onlining -> online"))
        #expect(
            log.has(
                .info, "memory15 onlining -> online",
                ["action": "online", "kind": "online", "node": "0", "value": "online_movable", "zone": "Movable"]))
    }

    @Test func coldplugLeavesCPUsAloneUnderMaxcpus() throws {
        try tree.addCPU(2, online: false)
        try tree.addMemory(8)
        let engine = engine(options: { $0.kernelCommandLine = "root=/dev/vda maxcpus=2" })
        try engine.start()
        // A block without a DIMM link may be in the middle of being added: it waits its turn.
        #expect(engine.nextDeadline != nil)
        engine.tick(now: .now + .seconds(1))
        #expect(tree.state("cpu2") == "0")
        #expect(tree.state("memory8") == "online")
        #expect(log.contains("coldplug of cpu devices is off"))
    }

    @Test func coldplugNeverAndDryRunWriteNothing() throws {
        try tree.addCPU(2, online: false)
        try tree.addMemory(8)
        try engine({
            $0.cpu.coldplug = .never; $0.memory.coldplug = .never
        }).start()
        try engine(options: { $0.dryRun = true }).start()
        #expect(kernel.writes.isEmpty)
        #expect(tree.state("cpu2") == "0")
        #expect(log.contains("would online (dry run)"))
    }

    // MARK: - Hot-add

    @Test func hotAddedCPUsAreOnlinedInOrder() throws {
        let engine = engine()
        try engine.start()
        for index in [5, 4] { try tree.addCPU(index, online: false) }
        engine.handle([Self.event("add", "cpu5"), Self.event("add", "cpu4"), Self.event("bind", "cpu4")])
        #expect(kernel.writes == ["cpu4=1", "cpu5=1"])
        // cpu4's `bind` follows its `add` in the burst: an added device, not one to discover.
        #expect(log.count("info cpu4 absent -> offline action=add") == 1)
        #expect(log.count("cpu4 onlining -> online") == 1)
        #expect(engine.takeChanges().filter { $0.event == .add }.map(\.device.name).sorted() == ["cpu4", "cpu5"])
        #expect(engine.takeOperations().map { $0.sinceAdded != nil } == [true, true], "timed from the add")
        // The kernel's KOBJ_ONLINE afterwards, and a repeated add, change nothing.
        engine.handle([Self.event("online", "cpu4"), Self.event("add", "cpu4")])
        #expect(kernel.writes.count == 2)
    }

    @Test func cpuExcludedByConfigStaysOffline() throws {
        let engine = engine { $0.cpu.exclude = CPUList([3...3]) }
        try engine.start()
        try tree.addCPU(2, online: false)
        try tree.addCPU(3, online: false)
        engine.handle([Self.event("add", "cpu2"), Self.event("add", "cpu3")])
        #expect(kernel.writes == ["cpu2=1"])
        #expect(engine.core.status().first { $0.device == "cpu3" }?.policy == "leave offline: in cpu.exclude (3)")
    }

    @Test func aDIMMWaitsForItsFirmwareNodeAndGoesWhole() throws {
        let engine = engine()
        try engine.start()
        let start = ContinuousClock.now
        for index in 16..<24 { try tree.addMemory(index) }
        engine.handle((16..<24).map { Self.event("add", "memory\($0)") }, now: start)
        #expect(kernel.writes.isEmpty, "no decision before the DIMM is known")
        #expect(engine.nextDeadline != nil)
        for index in 16..<24 { try tree.bindDIMM(index, "PNP0C80:00") }
        engine.tick(now: start + .milliseconds(1))
        #expect(kernel.writes == (16..<24).map { "memory\($0)=online_movable" })
        #expect(engine.nextDeadline == nil)
    }

    @Test func aBlockIsNotReadBeforeItHasItsNode() throws {
        let engine = engine()
        try engine.start()
        let start = ContinuousClock.now
        try tree.addMemory(16, node: nil, dimm: "PNP0C80:00")
        engine.handle([Self.event("add", "memory16")], now: start)
        #expect(kernel.writes.isEmpty)
        try tree.linkNode(16, 0)
        engine.tick(now: start + .milliseconds(5))
        #expect(kernel.writes == ["memory16=online_movable"])
        #expect(kernel.oopses.isEmpty, "valid_zones read before the node link: \(kernel.oopses)")
    }

    @Test func theRestOfADIMMIsWrittenWithoutWaitingForItsEvents() throws {
        let engine = engine { $0.memory.onlineType = .onlineMovable }
        try engine.start()
        for index in 16..<24 { try tree.addMemory(index) }
        engine.handle([Self.event("add", "memory16")])
        #expect(kernel.writes == (16..<24).map { "memory\($0)=online_movable" })
        // Their own events, read later, change nothing.
        engine.handle((17..<24).map { Self.event("add", "memory\($0)") })
        #expect(kernel.writes.count == 8)
        #expect(log.count("absent -> offline") == 8)
    }

    @Test func writesInARowArePerformedBeforeTheFirstIsAnswered() throws {
        let engine = engine { $0.memory.onlineType = .onlineMovable }
        try engine.start()
        for index in 16..<20 { try tree.addMemory(index) }
        engine.handle([Self.event("add", "memory16")])
        // The first block is written, read after (its DIMM link), and the run after it found; the
        // run is written back to back, and where each block went is read after the last write.
        let blocks = (16..<20).map { "memory\($0)" }
        let memory = kernel.operations.filter { operation in
            blocks.contains { operation.contains("\($0)=") || operation.contains("\($0)/") }
        }
        #expect(
            memory == ["write memory16=online_movable", "link memory16/firmware_node"]
                + (17..<20).map { "write memory\($0)=online_movable" }
                + (17..<20).map { "link memory\($0)/firmware_node" })
        // Each block's line still says where it went.
        for index in 16..<20 {
            #expect(log.has(.info, "memory\(index) onlining -> online", ["zone": "Movable", "node": "0"]))
        }
    }

    @Test func anExplicitOnlineTypeIsWrittenAtOnceWithoutReadingZones() throws {
        let engine = engine { $0.memory.onlineType = .onlineMovable }
        try engine.start()
        try tree.addMemory(16, node: nil)
        engine.handle([Self.event("add", "memory16")])
        #expect(kernel.writes == ["memory16=online_movable"])
        #expect(kernel.oopses.isEmpty, "valid_zones read before the node link: \(kernel.oopses)")
        #expect(engine.nextDeadline == nil)
    }

    @Test func blocksWithoutAnnouncedEventsJoinTheirDIMM() throws {
        let engine = engine()
        try engine.start()
        for index in 16..<24 { try tree.addMemory(index, dimm: "PNP0C80:01") }
        // Only two of the eight add events have been read so far.
        engine.handle([Self.event("add", "memory17"), Self.event("add", "memory18")])
        #expect(kernel.writes == (16..<24).map { "memory\($0)=online_movable" })
        // The rest arrive late and change nothing.
        engine.handle((19..<24).map { Self.event("add", "memory\($0)") })
        #expect(kernel.writes.count == 8)
    }

    @Test func theSecondDIMMGoesToTheKernelZoneWhenTheRatioIsReached() throws {
        let engine = engine()
        try engine.start()
        for index in 16..<24 { try tree.addMemory(index, dimm: "PNP0C80:00") }
        engine.handle((16..<24).map { Self.event("add", "memory\($0)") })
        for index in 24..<32 { try tree.addMemory(index, dimm: "PNP0C80:01") }
        engine.handle((24..<32).map { Self.event("add", "memory\($0)") })
        // 512 MiB at boot: 301% allows 12 movable blocks; 8 + 8 do not fit.
        #expect((16..<24).allSatisfy { tree.zones("memory\($0)") == "Movable" })
        #expect((24..<32).allSatisfy { tree.zones("memory\($0)") == "Normal" })
        #expect(
            log.has(.info, "memory24 onlining -> online", ["node": "0", "value": "online_kernel", "zone": "Normal"]))
    }

    @Test func blocksWithoutAnyDIMMAreDecidedAfterTheWait() throws {
        let engine = engine()
        try engine.start()
        let start = ContinuousClock.now
        for index in 16..<18 { try tree.addMemory(index) }
        engine.handle([Self.event("add", "memory16"), Self.event("add", "memory17")], now: start)
        engine.tick(now: start + .milliseconds(100))
        #expect(kernel.writes.isEmpty)
        engine.tick(now: start + .milliseconds(300))
        #expect(
            kernel.writes == ["memory16=online_movable", "memory17=online_movable"],
            "\(log.all.joined(separator: "\n"))")
    }

    @Test func explicitOnlineTypeNeedsNoWait() throws {
        let engine = engine { $0.memory.onlineType = .onlineKernel }
        try engine.start()
        try tree.addMemory(16)
        engine.handle([Self.event("add", "memory16")])
        #expect(kernel.writes == ["memory16=online_kernel"])
    }

    // MARK: - Errors from the kernel

    @Test func smtForbiddenThreadIsBlockedOnceAndNeverRetried() throws {
        let engine = engine()
        try engine.start()
        try tree.addCPU(3, online: false)
        kernel.inject([.notPermitted], into: "cpu3")
        engine.handle([Self.event("add", "cpu3")])
        engine.handle([Self.event("offline", "cpu3"), Self.event("add", "cpu3")])
        engine.eventsLost()
        #expect(kernel.writes == ["cpu3=1"])
        #expect(log.count("cpu3 onlining -> blocked") == 1)
        #expect(log.has(.warning, "cpu3 onlining -> blocked", ["kind": "blocked", "errno": "1"]))
        #expect(engine.core.status().first { $0.device == "cpu3" }?.state == .blocked)
    }

    @Test func aSiblingParkedOnItsFirstBringUpIsBlocked() throws {
        let engine = engine()
        try engine.start()
        try tree.addCPU(3, online: false)
        kernel.inject([.canceled], into: "cpu3")
        engine.handle([Self.event("add", "cpu3")])
        #expect(log.has(.warning, "cpu3 onlining -> blocked", ["kind": "blocked", "errno": "125"]))
        engine.eventsLost()
        #expect(kernel.writes == ["cpu3=1"])
    }

    @Test func busyForeverFailsThenARescanRetriesOnce() throws {
        let engine = engine()
        try engine.start()
        try tree.addCPU(2, online: false)
        kernel.inject(Array(repeating: .resourceBusy, count: 4), into: "cpu2")
        engine.handle([Self.event("add", "cpu2")])
        #expect(kernel.writes.count == 4)
        #expect(log.has(.error, "cpu2 onlining -> failed", ["kind": "failed", "attempts": "4", "errno": "16"]))
        engine.eventsLost()
        #expect(kernel.writes.count == 5)
        #expect(tree.state("cpu2") == "1")
    }

    @Test func alreadyOnlinedByTheKernelIsSuccess() throws {
        let engine = engine { $0.memory.onlineType = .onlineMovable }
        try engine.start()
        try tree.addMemory(16)
        engine.handle([Self.event("add", "memory16")])
        // Something else onlined it between our read and our write: EINVAL, read back online.
        try tree.addMemory(17)
        kernel.inject([.invalidArgument], into: "memory17")
        try tree.write("devices/system/memory/memory17/state", "online")
        engine.handle([Self.event("online", "memory17")])
        #expect(engine.core.status().allSatisfy { $0.state == .online })
        #expect(!log.contains("failed"))
    }

    // MARK: - Events that must not lead to writes

    @Test func forgedEventsNeverReachSysfs() throws {
        let engine = engine()
        try engine.start()
        try tree.addCPU(2, online: false)
        var forged = Self.event("add", "cpu2")
        forged.devpath = "/devices/system/cpu/cpu2/../../../../kernel"
        var wrongSubsystem = Self.event("add", "cpu2")
        wrongSubsystem.subsystem = "memory"
        var noSeqnum = Self.event("add", "cpu2")
        noSeqnum.seqnum = nil
        engine.handle([forged, wrongSubsystem, noSeqnum, Self.event("teleport", "cpu2")])
        #expect(kernel.writes.isEmpty)
        #expect(log.count("rejected uevent") == 4)
    }

    @Test func anAdministratorsOfflineIsRespected() throws {
        let engine = engine()
        try engine.start()
        try tree.write("devices/system/cpu/cpu1/online", "0")
        engine.handle([Self.event("offline", "cpu1")])
        engine.handle([Self.event("change", "cpu1")])
        #expect(kernel.writes.isEmpty)
        #expect(log.contains("cpu1 online -> offline"))
    }

    @Test func lostEventsAreRecoveredByARescan() throws {
        let engine = engine()
        try engine.start()
        try tree.addCPU(2, online: false)
        for index in 16..<20 { try tree.addMemory(index, dimm: "PNP0C80:00") }
        try tree.remove("memory3")
        engine.eventsLost()
        #expect(kernel.writes == ["cpu2=1"] + (16..<20).map { "memory\($0)=online_movable" })
        #expect(log.contains("memory3 online -> removed"))
    }

    @Test func removalIsFollowed() throws {
        let engine = engine()
        try engine.start()
        for index in 16..<18 { try tree.addMemory(index, online: true, zones: "Movable", dimm: "PNP0C80:00") }
        engine.handle([Self.event("add", "memory16"), Self.event("add", "memory17")])
        for index in 16..<18 { try tree.write("devices/system/memory/memory\(index)/state", "offline") }
        engine.handle([Self.event("offline", "memory16"), Self.event("offline", "memory17")])
        for index in 16..<18 { try tree.remove("memory\(index)") }
        engine.handle([Self.event("remove", "memory16"), Self.event("remove", "memory17")])
        #expect(kernel.writes.isEmpty, "offlined for removal, not to be onlined again")
        #expect(log.contains("memory17 offline -> removed"))
        #expect(!engine.core.status().contains { $0.device == "memory16" })
    }

    @Test func eventForAnUnknownDeviceIsReadFromSysfs() throws {
        let engine = engine()
        try engine.start()
        try tree.addMemory(40, online: true, zones: "Normal")
        engine.handle([Self.event("online", "memory40")])
        let status = engine.core.status().first { $0.device == "memory40" }
        #expect(status?.state == .online)
        #expect(status?.zone == "Normal")
    }

    @Test func noTestReadsValidZonesOfAnUnlinkedBlock() throws {
        // Guard on the fake kernel's guard: the check itself must be able to fail.
        try tree.addMemory(50, node: nil)
        _ = try kernel.read(DeviceID(name: "memory50")!, "valid_zones")
        #expect(kernel.oopses == ["memory50"])
    }

    @Test func statusShowsStateZoneNodeDIMMAndPolicy() throws {
        try tree.addCPU(2, online: false)
        try tree.addMemory(8, dimm: "PNP0C80:00")
        let engine = engine()
        try engine.scanOnly()
        let status = engine.core.status()
        #expect(
            status.map(\.device) == ["cpu0", "cpu1", "cpu2", "memory0", "memory1", "memory2", "memory3", "memory8"])
        #expect(status.first { $0.device == "cpu0" }?.state == .online)
        #expect(status.first { $0.device == "cpu2" }?.policy == "online (1)")
        let block = status.first { $0.device == "memory8" }
        #expect(block?.dimm == "PNP0C80:00")
        #expect(block?.node == 0)
        #expect(block?.policy == "online (online_movable)")
        #expect(status.first { $0.device == "memory1" }?.zone == "DMA32")
        #expect(kernel.writes.isEmpty)
    }
}
