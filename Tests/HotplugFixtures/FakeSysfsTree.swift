import Foundation
import HotplugCore

/// A sysfs tree of plain files in a temporary directory, laid out as the kernel lays out
/// `/sys/devices/system/{cpu,memory,node}`, with the links (`nodeN`, `firmware_node`) as real symlinks.
public final class FakeSysfsTree {
    public let root: String
    public let blockSize: Int

    /// `parent` is where the temporary tree goes (`/dev/shm` keeps a large one in memory).
    public init(blockSize: Int = 128 << 20, parent: String? = nil) throws {
        root =
            (parent.map { URL(fileURLWithPath: $0) } ?? FileManager.default.temporaryDirectory)
            .appendingPathComponent("hotplugd-sysfs-\(UUID().uuidString)").path
        self.blockSize = blockSize
        for directory in ["cpu", "memory", "node/node0"] {
            try FileManager.default.createDirectory(
                atPath: "\(root)/devices/system/\(directory)", withIntermediateDirectories: true)
        }
        try write("devices/system/memory/block_size_bytes", String(blockSize, radix: 16))
        try write("devices/system/memory/auto_online_blocks", "offline")
        try FileManager.default.createDirectory(
            atPath: "\(root)/devices/LNXSYSTM:00/LNXSYBUS:00/PNP0A06:00", withIntermediateDirectories: true)
    }

    deinit {
        try? FileManager.default.removeItem(atPath: root)
    }

    /// `online: nil` makes a CPU without an online attribute, like cpu0.
    public func addCPU(_ index: Int, online: Bool?, node: Int = 0) throws {
        let path = "devices/system/cpu/cpu\(index)"
        try FileManager.default.createDirectory(atPath: "\(root)/\(path)", withIntermediateDirectories: true)
        try write("\(path)/uevent", "")
        if let online { try write("\(path)/online", online ? "1" : "0") }
        try link("\(path)/node\(node)", to: "../../node/node\(node)")
        try FileManager.default.createDirectory(
            atPath: "\(root)/devices/system/node/node\(node)", withIntermediateDirectories: true)
        try link("devices/system/node/node\(node)/cpu\(index)", to: "../../cpu/cpu\(index)")
    }

    /// `node: nil` leaves out the node link, as in the moment after the kernel's `add` uevent.
    public func addMemory(
        _ index: Int, online: Bool = false, zones: String = "Normal Movable", node: Int? = 0, dimm: String? = nil
    ) throws {
        let path = "devices/system/memory/memory\(index)"
        try FileManager.default.createDirectory(atPath: "\(root)/\(path)", withIntermediateDirectories: true)
        try write("\(path)/state", online ? "online" : "offline")
        try write("\(path)/valid_zones", zones)
        try write("\(path)/uevent", "")
        if let node { try linkNode(index, node) }
        if let dimm { try bindDIMM(index, dimm) }
    }

    /// Adds the `nodeN` link, as the kernel does shortly after a block's `add` uevent.
    public func linkNode(_ index: Int, _ node: Int) throws {
        try link("devices/system/memory/memory\(index)/node\(node)", to: "../../node/node\(node)")
        try FileManager.default.createDirectory(
            atPath: "\(root)/devices/system/node/node\(node)", withIntermediateDirectories: true)
        try link("devices/system/node/node\(node)/memory\(index)", to: "../../memory/memory\(index)")
    }

    /// Adds the `firmware_node` link, as the ACPI memory driver does after adding a DIMM's blocks.
    public func bindDIMM(_ index: Int, _ dimm: String) throws {
        try FileManager.default.createDirectory(
            atPath: "\(root)/devices/LNXSYSTM:00/LNXSYBUS:00/PNP0A06:00/\(dimm)", withIntermediateDirectories: true)
        try link(
            "devices/system/memory/memory\(index)/firmware_node",
            to: "../../../LNXSYSTM:00/LNXSYBUS:00/PNP0A06:00/\(dimm)")
    }

    /// `module/memory_hotplug/parameters` as Linux 5.16 and later have it, at the kernel's defaults.
    public func addMemoryHotplugParameters() throws {
        try FileManager.default.createDirectory(
            atPath: "\(root)/module/memory_hotplug/parameters", withIntermediateDirectories: true)
        for (name, value) in [
            ("online_policy", "contig-zones"), ("auto_movable_ratio", "301"), ("auto_movable_numa_aware", "Y"),
        ] {
            try write("module/memory_hotplug/parameters/\(name)", value)
        }
    }

    /// `firmware/memmap` with one entry per range, as `N/start`, `N/end` (inclusive, `0x…`) and
    /// `N/type`, numbered from `first` on as the kernel numbers them.
    public func addFirmwareMemoryMap(_ entries: [(start: Int, end: Int, type: String)], first: Int = 0) throws {
        for (index, entry) in entries.enumerated() {
            let path = "firmware/memmap/\(first + index)"
            try FileManager.default.createDirectory(atPath: "\(root)/\(path)", withIntermediateDirectories: true)
            try write("\(path)/start", "0x" + String(entry.start, radix: 16))
            try write("\(path)/end", "0x" + String(entry.end, radix: 16))
            try write("\(path)/type", entry.type)
        }
    }

    /// A dax device as the kernel lays it out: the device under `devices/`, and a link to it in
    /// `bus/dax/devices` (`target` overrides the link, for links that lead elsewhere).
    public func addDaxDevice(_ name: String, start: Int, size: Int, target: String? = nil) throws {
        let device = "devices/platform/hmem.0/\(name)"
        try FileManager.default.createDirectory(atPath: "\(root)/\(device)", withIntermediateDirectories: true)
        try write("\(device)/resource", "0x" + String(start, radix: 16))
        try write("\(device)/size", "\(size)")
        try FileManager.default.createDirectory(atPath: "\(root)/bus/dax/devices", withIntermediateDirectories: true)
        try link("bus/dax/devices/\(name)", to: target ?? "../../../\(device)")
    }

    /// Removes the device and its link under its node, as the kernel does when it unregisters it.
    public func remove(_ device: String) throws {
        let kind = device.hasPrefix("cpu") ? "cpu" : "memory"
        try FileManager.default.removeItem(atPath: "\(root)/devices/system/\(kind)/\(device)")
        let nodes = "\(root)/devices/system/node"
        for node in (try? FileManager.default.contentsOfDirectory(atPath: nodes)) ?? [] {
            try? FileManager.default.removeItem(atPath: "\(nodes)/\(node)/\(device)")
        }
    }

    public func read(_ relative: String) -> String? {
        (try? String(contentsOfFile: "\(root)/\(relative)", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    public func state(_ device: String) -> String? {
        device.hasPrefix("cpu")
            ? read("devices/system/cpu/\(device)/online") : read("devices/system/memory/\(device)/state")
    }

    public func zones(_ device: String) -> String? { read("devices/system/memory/\(device)/valid_zones") }

    public func write(_ relative: String, _ text: String) throws {
        try (text + "\n").write(toFile: "\(root)/\(relative)", atomically: false, encoding: .utf8)
    }

    private func link(_ relative: String, to target: String) throws {
        try FileManager.default.createSymbolicLink(atPath: "\(root)/\(relative)", withDestinationPath: target)
    }

    /// A uevent as the monitor hands it on.
    public static func event(_ action: String, _ device: String, seqnum: Int = 1) -> RawUevent {
        let kind = device.hasPrefix("cpu") ? "cpu" : "memory"
        return RawUevent(
            action: action, devpath: "/devices/system/\(kind)/\(device)", subsystem: kind, seqnum: "\(seqnum)")
    }
}

extension FakeSysfsTree {
    /// The small machine most tests start from: cpu0 without an online attribute (like the boot
    /// CPU), cpu1 online, and 512 MiB of boot memory (memory0 spanning zones, memory1-3 in DMA32).
    public static func smallMachine() throws -> FakeSysfsTree {
        let tree = try FakeSysfsTree()
        try tree.addCPU(0, online: nil)
        try tree.addCPU(1, online: true)
        try tree.addMemory(0, online: true, zones: "none")
        for index in 1...3 { try tree.addMemory(index, online: true, zones: "DMA32") }
        return tree
    }
}
