import HotplugCore
import HotplugDaemon
import HotplugFixtures
import HotplugSystem
import Testing

/// Operator intent: offlines by others are kept across restarts, unless `enforce` says otherwise.
extension CoreDriverTests {
    var store: IntentStore { IntentStore(directory: "\(tree.root)/state") }

    func storedIntent() throws -> [String: OperatorIntent.Origin] {
        let entries = try store.load().intent.entries
        return Dictionary(uniqueKeysWithValues: entries.map { ($0.key.name, $0.value.origin) })
    }

    @Test func anAdministratorsOfflineSurvivesARestart() throws {
        let running = engine(intentStore: store)
        try running.start()
        try tree.write("devices/system/cpu/cpu1/online", "0")
        running.handle([Self.event("offline", "cpu1")])
        #expect(try storedIntent() == ["cpu1": .observed])
        #expect(log.contains("taken offline by somebody else: kept offline until somebody onlines it"))

        let restarted = engine(intentStore: store)
        try restarted.start()
        #expect(kernel.writes.isEmpty)
        let cpu1 = restarted.core.status().first { $0.device == "cpu1" }
        #expect(cpu1?.intent?.origin == .observed)
        #expect(cpu1?.policy?.hasPrefix("leave offline: taken offline by somebody else at ") == true)
    }

    @Test func onliningOrRemovingADeviceDropsItsIntent() throws {
        let engine = engine(intentStore: store)
        try engine.start()
        try tree.write("devices/system/cpu/cpu1/online", "0")
        try tree.addMemory(16, online: true, zones: "Movable", dimm: "PNP0C80:00")
        engine.handle([Self.event("add", "memory16")])
        try tree.write("devices/system/memory/memory16/state", "offline")
        engine.handle([Self.event("offline", "cpu1"), Self.event("offline", "memory16")])
        #expect(try storedIntent() == ["cpu1": .observed, "memory16": .observed])
        try tree.write("devices/system/cpu/cpu1/online", "1")
        try tree.remove("memory16")
        engine.handle([Self.event("online", "cpu1"), Self.event("remove", "memory16")])
        #expect(try storedIntent().isEmpty)
        #expect(kernel.writes.isEmpty)
    }

    @Test func enforceOnlinesAgainWhatOthersTookOffline() throws {
        let engine = engine({ $0.cpu.enforce = true }, intentStore: store)
        try engine.start()
        try tree.write("devices/system/cpu/cpu1/online", "0")
        engine.handle([Self.event("offline", "cpu1")])
        #expect(kernel.writes == ["cpu1=1"])
        #expect(try storedIntent().isEmpty)
        #expect(log.contains("enforce is set, so it goes online again"))
    }

    @Test func enforceNeverOverrulesHotplugdOffline() throws {
        try tree.addCPU(2, online: false)
        try tree.addCPU(3, online: false)
        try store.update {
            $0[DeviceID(name: "cpu2")!] = .init(origin: .command, since: 100)
            $0[DeviceID(name: "cpu3")!] = .init(origin: .observed, since: 100)
        }
        try engine({ $0.cpu.enforce = true }, intentStore: store).start()
        #expect(kernel.writes == ["cpu3=1"])
        #expect(try storedIntent() == ["cpu2": .command])
    }

    @Test func turningEnforceOnByReloadOnlinesWhatWasKeptOffline() throws {
        try tree.addCPU(2, online: false)
        try store.update { $0[DeviceID(name: "cpu2")!] = .init(origin: .observed, since: 100) }
        let engine = engine(intentStore: store)
        try engine.start()
        #expect(kernel.writes.isEmpty)
        var config = engine.core.config
        config.cpu.enforce = true
        engine.update(config: config)
        #expect(kernel.writes == ["cpu2=1"])
        #expect(try storedIntent().isEmpty)
    }

    @Test func staleEntriesAreDroppedAtStart() throws {
        try tree.addCPU(2, online: false)
        try store.update { _ in }
        try store.files.write(
            "intent", "cpu1 observed 5\ncpu2 observed 5\ncpu9 observed 5\nmemory3 comand 5\n")
        let engine = engine(intentStore: store)
        try engine.start()
        #expect(try storedIntent() == ["cpu2": .observed], "cpu1 is online, cpu9 is gone")
        #expect(kernel.writes.isEmpty)
        #expect(log.has(.info, "operator intent dropped", ["device": "cpu1", "reason": "the device is online"]))
        #expect(log.has(.info, "operator intent dropped", ["device": "cpu9", "reason": "the device is gone"]))
        #expect(
            log.fields(of: "a line of the intent file is not an entry").map { $0["error"]?.hasPrefix("line 4:") } == [
                true
            ])
    }

    @Test func anIntentFileThatCannotBeReadWholeKeepsOfflineDevicesOfflineUntilMended() throws {
        try tree.addCPU(2, online: false)
        try store.update { _ in }
        try store.files.write("intent", "cpu3 observed 5\ncpu2 observd 5\n")  // cpu2's line is broken.
        let engine = engine(intentStore: store)
        try engine.start()
        #expect(kernel.writes.isEmpty, "cpu2 may be the one the broken line keeps offline")
        #expect(log.has(.notice, "left offline while the intent file cannot be read whole", ["devices": "cpu2"]))
        #expect(log.count("cannot read the intent file whole") == 1)
        let cpu2 = engine.core.status().first { $0.device == "cpu2" }
        #expect(cpu2?.policy == "leave offline: the intent file cannot be read whole")
        // A CPU hot-added meanwhile is no device the file can keep offline.
        try tree.addCPU(4, online: false)
        engine.handle([Self.event("add", "cpu4")])
        #expect(kernel.writes == ["cpu4=1"])

        // Mended, and the daemon reloaded: cpu2 is no entry of it, and goes online.
        try store.files.write("intent", "cpu3 observed 5\n")
        engine.update(config: engine.core.config)
        #expect(kernel.writes == ["cpu4=1", "cpu2=1"])
        #expect(log.contains("the intent file reads whole again"))
    }

    @Test func anOversizedIntentFileFailsClosedAndIsNeverWritten() throws {
        try tree.addCPU(2, online: false)
        try store.update { _ in }
        try store.files.write("intent", String(repeating: "# padding\n", count: 110_000))
        let engine = engine(intentStore: store)
        try engine.start()
        #expect(kernel.writes.isEmpty)
        #expect(log.contains("cannot read the intent file whole"))
    }

    @Test func thirtySixThousandBlocksOfflineAreOneLineReadBackWhole() throws {
        let blocks = (1...36_000).map { DeviceID(kind: .memory, index: $0)! }
        try store.update { intent in for id in blocks { intent[id] = .init(origin: .command, since: 9) } }
        let text = try String(contentsOfFile: store.path, encoding: .utf8)
        #expect(text.utf8.count < 100, "\(text)")
        #expect(try store.load().intent.entries.count == 36_000)
    }

    @Test func aStartWhoseScanFailsDecidesNothing() throws {
        // Memory cannot be listed: the scan ends after the CPUs.
        struct UnlistableMemory: SysfsAccess {
            let kernel: FakeKernel
            var root: String { kernel.root }
            func devices(_ kind: DeviceKind) throws(SysfsError) -> [DeviceID] {
                guard kind == .cpu else {
                    throw SysfsError(path: "\(root)/devices/system/memory", operation: "list", errno: .ioError)
                }
                return try kernel.devices(kind)
            }
            func read(_ device: DeviceID, _ attribute: String) throws(SysfsError) -> String {
                try kernel.read(device, attribute)
            }
            func write(
                _ device: DeviceID, _ attribute: String, _ value: String, interruptible: Bool
            ) throws(SysfsError) {
                try kernel.write(device, attribute, value, interruptible: interruptible)
            }
            func link(_ device: DeviceID, _ name: String) throws(SysfsError) -> String? {
                try kernel.link(device, name)
            }
            func entries(_ device: DeviceID) throws(SysfsError) -> [String] { try kernel.entries(device) }
            func has(_ device: DeviceID, _ name: String) -> Bool { kernel.has(device, name) }
            func read(_ kind: DeviceKind, path: String) throws(SysfsError) -> String {
                try kernel.read(kind, path: path)
            }
            func nodeMembership() throws(SysfsError) -> [DeviceID: Int] { try kernel.nodeMembership() }
            func firmwareRAM() throws(SysfsError) -> [ClosedRange<Int>]? { try kernel.firmwareRAM() }
            func daxRAM() throws(SysfsError) -> [ClosedRange<Int>] { try kernel.daxRAM() }
        }
        try tree.addCPU(2, online: false)
        try store.update { $0[DeviceID(name: "memory3")!] = OperatorIntent.Entry(origin: .command, since: 5) }
        let driver = CoreDriver(
            config: Config(), sysfs: UnlistableMemory(kernel: kernel), intentStore: store, logger: log.logger())
        #expect(throws: SysfsError.self) { try driver.start() }
        #expect(kernel.writes.isEmpty, "nothing onlined on a partial view")
        #expect(try storedIntent() == ["memory3": .command], "not reached is not gone")
    }

    @Test func statusShowsNoIntentOfADeviceOnlineSinceItWasRecorded() throws {
        try store.update { _ in }
        try store.files.write("intent", "cpu1 command 5\n")
        let engine = engine(options: { $0.dryRun = true }, intentStore: store)
        try engine.scanOnly()
        #expect(engine.core.status().first { $0.device == "cpu1" }?.intent == nil, "cpu1 is online")
    }

    @Test func aDryRunKeepsIntentInMemoryOnly() throws {
        let engine = engine(options: { $0.dryRun = true }, intentStore: store)
        try engine.start()
        try tree.write("devices/system/cpu/cpu1/online", "0")
        engine.handle([Self.event("offline", "cpu1")])
        #expect(engine.core.intent[DeviceID(name: "cpu1")!]?.origin == .observed)
        #expect(try storedIntent().isEmpty)
    }
}
