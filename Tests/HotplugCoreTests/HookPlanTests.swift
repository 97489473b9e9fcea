import Testing

@testable import HotplugCore

@Suite struct HookPlanTests {
    static func id(_ name: String) -> DeviceID { DeviceID(name: name)! }

    @Test func transitionsBecomeHookEvents() {
        var machine = DeviceMachine()
        #expect(machine.apply(.event(.add)).flatMap(HookEvent.init) == .add)
        #expect(machine.apply(.onlineRequested).flatMap(HookEvent.init) == nil)
        #expect(machine.apply(.onlineFinished(.succeeded)).flatMap(HookEvent.init) == .online)
        #expect(machine.apply(.event(.offline)).flatMap(HookEvent.init) == .offline)
        #expect(machine.apply(.event(.remove)).flatMap(HookEvent.init) == .remove)
        // What a scan finds is not a change of the machine.
        var scanned = DeviceMachine()
        #expect(scanned.apply(.observed(.online)).flatMap(HookEvent.init) == nil)
        var offlineAtScan = DeviceMachine()
        #expect(offlineAtScan.apply(.observed(.offline)).flatMap(HookEvent.init) == nil)
        #expect(offlineAtScan.apply(.onlineRequested) != nil)
        #expect(offlineAtScan.apply(.onlineFinished(.blocked(errno: 1))).flatMap(HookEvent.init) == .blocked)
    }

    @Test func aBurstIsOneRunPerHookKindAndEvent() {
        var cpuHook = Config.Hook(name: "cpusets", command: ["/bin/true"])
        cpuHook.kinds = [.cpu]
        cpuHook.events = [.online, .offline]
        let anyHook = Config.Hook(name: "all", command: ["/bin/true"])
        let changes = [
            DeviceChange(device: Self.id("memory41"), event: .online, zone: "Movable", node: 1),
            DeviceChange(device: Self.id("cpu5"), event: .online, node: 0),
            DeviceChange(device: Self.id("memory40"), event: .online, zone: "Movable", node: 1),
            DeviceChange(device: Self.id("cpu4"), event: .online, node: 0),
            DeviceChange(device: Self.id("cpu4"), event: .offline, node: 0),
            DeviceChange(device: Self.id("cpu6"), event: .add),
        ]
        let runs = HookRun.plan(changes, hooks: [cpuHook, anyHook])
        #expect(
            runs.map { "\($0.hook.name) \($0.kind) \($0.event) \($0.changes.map(\.device.name))" } == [
                "cpusets cpu online [\"cpu4\", \"cpu5\"]",
                "cpusets cpu offline [\"cpu4\"]",
                "all cpu online [\"cpu4\", \"cpu5\"]",
                "all memory online [\"memory40\", \"memory41\"]",
            ])
        #expect(
            runs[3].environment == [
                "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "HOTPLUG_HOOK": "all",
                "HOTPLUG_ACTION": "online",
                "HOTPLUG_KIND": "memory",
                "HOTPLUG_COUNT": "2",
                "HOTPLUG_PART": "1/1",
                "HOTPLUG_DEVICES": "memory40 memory41",
                "HOTPLUG_NODES": "1",
                "HOTPLUG_ZONES": "Movable",
                "HOTPLUG_DETAILS": "memory40:1:Movable memory41:1:Movable",
            ])
        #expect(runs[0].environment["HOTPLUG_DETAILS"] == "cpu4:0:- cpu5:0:-")
        #expect(runs[0].environment["HOTPLUG_ZONES"] == "")
    }

    @Test func noMatchingChangeMeansNoRun() {
        var memoryHook = Config.Hook(name: "m", command: ["/bin/true"])
        memoryHook.kinds = [.memory]
        #expect(HookRun.plan([DeviceChange(device: Self.id("cpu1"), event: .online)], hooks: [memoryHook]).isEmpty)
        #expect(HookRun.plan([], hooks: [memoryHook]).isEmpty)
    }
}
