import Foundation
import HotplugCore
import HotplugFixtures
import HotplugSystem
import Testing

/// The sysfs layer never follows a link on the way to an attribute, whether openat2 does the
/// walk or the component-by-component fallback does.
@Suite struct SysfsTests {
    @Test func linksOnTheWayToAnAttributeAreRefused() throws {
        let tree = try FakeSysfsTree()
        try tree.addMemory(8)
        let outside = "\(tree.root)/outside"
        try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: true)
        try "offline\n".write(toFile: "\(outside)/state", atomically: false, encoding: .utf8)
        // A device directory that is a link, and an attribute that is a link.
        try FileManager.default.createSymbolicLink(
            atPath: "\(tree.root)/devices/system/memory/memory9", withDestinationPath: outside)
        try FileManager.default.createDirectory(
            atPath: "\(tree.root)/devices/system/memory/memory10", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(
            atPath: "\(tree.root)/devices/system/memory/memory10/state", withDestinationPath: "\(outside)/state")
        let sysfs = try Sysfs(root: tree.root)
        #expect(try sysfs.read(DeviceID(name: "memory8")!, "state") == "offline")
        for name in ["memory9", "memory10"] {
            let id = DeviceID(name: name)!
            #expect(throws: SysfsError.self) { try sysfs.read(id, "state") }
            #expect(throws: SysfsError.self) { try sysfs.write(id, "state", "online") }
        }
        #expect(try String(contentsOfFile: "\(outside)/state", encoding: .utf8) == "offline\n")
    }

    /// A scan reads node membership from the node directories, once; it must agree with the
    /// devices' own `nodeN` links and leave out a block not linked yet.
    @Test func nodeMembershipMatchesTheDevicesLinks() throws {
        let tree = try FakeSysfsTree()
        try tree.addCPU(0, online: nil)
        try tree.addCPU(1, online: true, node: 1)
        try tree.addMemory(0, online: true, zones: "Normal")
        try tree.addMemory(8, node: 1)
        try tree.addMemory(9, node: nil)
        let sysfs = try Sysfs(root: tree.root)
        let membership = try sysfs.nodeMembership()
        #expect(
            membership == [
                DeviceID(name: "cpu0")!: 0, DeviceID(name: "cpu1")!: 1,
                DeviceID(name: "memory0")!: 0, DeviceID(name: "memory8")!: 1,
            ])
        for id in try sysfs.devices(.cpu) + sysfs.devices(.memory) {
            #expect(try sysfs.node(of: id) == membership[id], "\(id)")
        }
    }

    /// A look for blocks' nodes goes up to the first block without a link, whatever the hint.
    @Test func nodesAreLookedForInOrderUpToTheFirstUnlinkedBlock() throws {
        let tree = try FakeSysfsTree()
        try tree.addMemory(8, node: 1)
        try tree.addMemory(9, node: 0)
        try tree.addMemory(10, node: nil)
        try tree.addMemory(11, node: 1)
        let sysfs = try Sysfs(root: tree.root)
        let ids = (8...11).map { DeviceID(kind: .memory, index: $0)! }
        for hint in [nil, 0, 1, 5] {
            let readings = sysfs.answer(.nodes(ids.reversed(), hint: hint))
            #expect(readings.nodes == [ids[0]: 1, ids[1]: 0], "hint \(String(describing: hint))")
            #expect(readings.failures.isEmpty)
        }
        // A block gone ends the look quietly: its `remove` event follows.
        try tree.remove("memory10")
        #expect(sysfs.answer(.nodes(ids, hint: 1)).nodes == [ids[0]: 1, ids[1]: 0])
        #expect(sysfs.answer(.nodes(ids, hint: 1)).failures.isEmpty)
    }
}

@Suite struct FirmwareMemoryMapTests {
    @Test func systemRAMRangesAreReadAndOtherTypesLeftOut() throws {
        let tree = try FakeSysfsTree()
        let sysfs = try Sysfs(root: tree.root)
        #expect(try sysfs.firmwareRAM() == nil)
        try tree.addFirmwareMemoryMap([
            (0, 0x9_fbff, "System RAM"), (0x10_0000, 0x7ffd_ffff, "System RAM"), (0xfeff_c000, 0xfeff_ffff, "Reserved"),
            (0x1_0000_0000, 0x1_3fff_ffff, "System RAM"),
        ])
        let ranges = try #require(try Sysfs(root: tree.root).firmwareRAM())
        #expect(
            ranges.sorted { $0.lowerBound < $1.lowerBound } == [
                0...0x9_fbff, 0x10_0000...0x7ffd_ffff, 0x1_0000_0000...0x1_3fff_ffff,
            ])
    }

    /// A hot-add reads only its own new entry: names are never reused, so their contents never change.
    @Test func eachEntryIsReadOnceAndGoneOnesAreDropped() throws {
        let tree = try FakeSysfsTree()
        try tree.addFirmwareMemoryMap([(0x10_0000, 0x7ffd_ffff, "System RAM"), (0xfeff_c000, 0xfeff_ffff, "Reserved")])
        let sysfs = try Sysfs(root: tree.root)
        #expect(try sysfs.firmwareRAM() == [0x10_0000...0x7ffd_ffff])
        try tree.addFirmwareMemoryMap([(0x1_0000_0000, 0x1_3fff_ffff, "System RAM")], first: 2)
        // Changed behind the kernel's back, so that a second read of it would show.
        try tree.write("firmware/memmap/0/type", "Reserved")
        #expect(try sysfs.firmwareRAM() == [0x10_0000...0x7ffd_ffff, 0x1_0000_0000...0x1_3fff_ffff])
        try FileManager.default.removeItem(atPath: "\(tree.root)/firmware/memmap/2")
        #expect(try sysfs.firmwareRAM() == [0x10_0000...0x7ffd_ffff])
        #expect(try Sysfs(root: tree.root).firmwareRAM() == [], "a new reader reads every entry")
    }
}

@Suite struct DaxRangesTests {
    @Test func daxDevicesAreFoundThroughTheirLinksWithoutFollowingThem() throws {
        let tree = try FakeSysfsTree()
        #expect(try Sysfs(root: tree.root).daxRAM().isEmpty)
        try tree.addDaxDevice("dax0.0", start: 0x2_0000_0000, size: 1 << 30)
        #expect(try Sysfs(root: tree.root).daxRAM() == [0x2_0000_0000...(0x2_0000_0000 + (1 << 30) - 1)])
    }

    @Test func aLinkThatLeadsOutOfDevicesIsRefused() throws {
        let tree = try FakeSysfsTree()
        try tree.addDaxDevice("dax0.0", start: 0x2_0000_0000, size: 1 << 30, target: "../../../../../../tmp")
        #expect(throws: SysfsError.self) { try Sysfs(root: tree.root).daxRAM() }
    }
}
