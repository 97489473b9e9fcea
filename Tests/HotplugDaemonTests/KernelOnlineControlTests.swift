import Foundation
import HotplugCore
import HotplugFixtures
import HotplugSystem
import Testing

@testable import HotplugDaemon

/// The kernel's onlining settings on a tree of files laid out as the kernel's: set from the
/// policy, recorded before any change, put back, taken over after a crash, defended.
@Suite struct KernelOnlineControlTests {
    let tree: FakeSysfsTree
    let runtime: String
    let log = LogCapture()

    init() throws {
        tree = try FakeSysfsTree()
        try tree.addMemoryHotplugParameters()
        runtime = "\(tree.root)/run-hotplugd"
    }

    func control() throws -> KernelOnlineControl {
        KernelOnlineControl(
            sysfs: try Sysfs(root: tree.root), runtimeDirectory: OwnDirectory(runtime), logger: log.logger())
    }

    func settings() -> [String] {
        [
            tree.read("devices/system/memory/auto_online_blocks"),
            tree.read("module/memory_hotplug/parameters/online_policy"),
            tree.read("module/memory_hotplug/parameters/auto_movable_ratio"),
            tree.read("module/memory_hotplug/parameters/auto_movable_numa_aware"),
        ].map { $0 ?? "-" }
    }

    var record: String? { try? String(contentsOfFile: "\(runtime)/kernel-online", encoding: .utf8) }

    @Test func theDefaultPolicyIsSetRecordedAndPutBack() throws {
        let control = try control()
        var memory = Config.Memory()
        memory.autoMovableRatio = 200
        memory.autoMovableNUMAAware = false
        let mode = control.apply(memory)
        #expect(mode.kernelValue == .online)
        #expect(settings() == ["online", "auto-movable", "200", "N"])
        let recorded = try #require(record)
        for line in [
            "auto_online_blocks offline", "online_policy contig-zones", "auto_movable_ratio 301",
            "auto_movable_numa_aware Y",
        ] {
            #expect(recorded.contains(line + "\n"), "\(recorded)")
        }
        #expect(
            log.has(
                .notice, "memory onlining: the kernel onlines new blocks inside the add, as hotplugd's policy says",
                ["mode": "kernel", "auto_online_blocks": "online", "online_policy": "auto-movable"]))

        control.restore()
        #expect(settings() == ["offline", "contig-zones", "301", "Y"])
        #expect(record == nil)
        #expect(log.contains("the kernel's earlier memory onlining settings restored"))
    }

    @Test func onlyWhatDiffersIsChangedAndRecorded() throws {
        try tree.write("module/memory_hotplug/parameters/online_policy", "auto-movable")
        let control = try control()
        control.apply(Config.Memory())
        #expect(settings() == ["online", "auto-movable", "301", "Y"])
        #expect(record?.contains("online_policy") == false)
        #expect(record?.contains("auto_online_blocks offline") == true)
        control.restore()
        // What hotplugd found so stays so.
        #expect(settings() == ["offline", "auto-movable", "301", "Y"])
    }

    @Test func aRestartAfterACrashPutsBackWhatTheFirstRunFound() throws {
        try control().apply(Config.Memory())  // The process dies here: nothing is restored.
        #expect(settings() == ["online", "auto-movable", "301", "Y"])

        let second = try control()
        #expect(log.contains("taking over the kernel memory onlining settings an earlier hotplugd changed"))
        second.apply(Config.Memory())
        second.restore()
        #expect(settings() == ["offline", "contig-zones", "301", "Y"])
        #expect(record == nil)
    }

    @Test func aPolicyTheKernelCannotSayPutsBackWhatAnEarlierOneSet() throws {
        let control = try control()
        control.apply(Config.Memory())
        var memory = Config.Memory()
        memory.nodes = [.init(node: 1, onlineType: .onlineKernel)]
        let mode = control.apply(memory)
        guard case .userspace(let reason, let zones) = mode else {
            Issue.record("\(mode)")
            return
        }
        #expect(reason.contains("node 1"))
        // auto_online_blocks back as found; the kernel still picks auto-movable zones for `online`.
        #expect(zones?[.onlinePolicy] == "auto-movable")
        #expect(settings() == ["offline", "auto-movable", "301", "Y"])
        #expect(record?.contains("auto_online_blocks") == false)
        control.restore()
        #expect(settings() == ["offline", "contig-zones", "301", "Y"])
        #expect(record == nil)
        #expect(
            log.has(
                .notice, "memory onlining: hotplugd onlines new blocks itself", ["mode": "userspace", "reason": reason])
        )
    }

    @Test func aChangeBySomebodyElseIsLoggedAndUndone() throws {
        let control = try control()
        control.apply(Config.Memory())
        try tree.write("devices/system/memory/auto_online_blocks", "offline")
        control.verify()
        #expect(settings()[0] == "online")
        #expect(
            log.has(
                .warning,
                "somebody else changed a kernel memory onlining setting that hotplugd set; hotplugd sets it again",
                ["setting": "auto_online_blocks", "found": "offline", "value": "online"]))
        control.restore()
        #expect(settings() == ["offline", "contig-zones", "301", "Y"])
    }

    @Test func aSettingTheKernelRefusesLeavesEverythingAsFound() throws {
        // A directory where the file should be: its write fails, as a sandbox's read-only /sys would.
        try FileManager.default.removeItem(atPath: "\(tree.root)/devices/system/memory/auto_online_blocks")
        try FileManager.default.createDirectory(
            atPath: "\(tree.root)/devices/system/memory/auto_online_blocks", withIntermediateDirectories: false)
        try "offline".write(
            toFile: "\(tree.root)/devices/system/memory/auto_online_blocks/x", atomically: false, encoding: .utf8)
        let control = try control()
        let mode = control.apply(Config.Memory())
        #expect(!mode.isKernel)
        #expect(settings().dropFirst() == ["contig-zones", "301", "Y"])
        #expect(record == nil)
        #expect(log.contains("cannot set the kernel's memory onlining; hotplugd onlines new blocks itself"))
    }

    @Test func statusSaysWhoOnlinesAndWhetherTheKernelIsSet() throws {
        let sysfs = try Sysfs(root: tree.root)
        let plan = MemoryOnlining.plan(Config.Memory(), kernel: sysfs.kernelOnlineSupport())
        let before = MemoryOnliningStatus(plan: plan, sysfs: sysfs)
        #expect(before.mode == "kernel")
        #expect(before.differing == ["auto_online_blocks": "online", "online_policy": "auto-movable"])
        #expect(
            before.text.contains("hotplugd sets auto_online_blocks=online online_policy=auto-movable when it runs"))
        try control().apply(Config.Memory())
        let running = MemoryOnliningStatus(plan: plan, sysfs: sysfs)
        #expect(running.differing.isEmpty)
        #expect(running.settings["auto_online_blocks"] == "online")
        #expect(running.text.hasPrefix("Memory onlining: by the kernel inside the add (now: auto_online_blocks=online"))

        var memory = Config.Memory()
        memory.kernelOnline = false
        let userspace = MemoryOnliningStatus(
            plan: MemoryOnlining.plan(memory, kernel: sysfs.kernelOnlineSupport()), sysfs: sysfs)
        #expect(userspace.mode == "userspace" && userspace.reason == "memory.kernel_online is false")
        // auto_online_blocks reads online: the kernel onlines new memory, not by hotplugd's policy.
        #expect(userspace.differing == ["auto_online_blocks": "offline"])
    }

    @Test func anUnwritableRecordChangesNothing() throws {
        // The runtime directory's place is taken by a file: nothing can be recorded there.
        try "".write(toFile: runtime, atomically: false, encoding: .utf8)
        let control = try control()
        #expect(!control.apply(Config.Memory()).isKernel)
        #expect(settings() == ["offline", "contig-zones", "301", "Y"])
    }
}
