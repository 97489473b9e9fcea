import Foundation
import HotplugCore

/// What `hotplugd status` shows: CPUs, memory blocks collapsed into ranges the way lsmem(1) shows
/// them, and totals per zone and node. Its JSON form (snake_case keys) is a stable interface:
/// fields are only ever added, and `schema_version` changes if one is ever removed or changes meaning.
public struct StatusReport: Sendable, Equatable, Codable {
    public static let currentSchemaVersion = 1

    public var schemaVersion: Int
    public var cpus: [DeviceStatus]
    public var memory: Memory
    /// Who onlines new memory; nil when not looked at.
    public var memoryOnlining: MemoryOnliningStatus?
    /// Where the states come from: `daemon` (the running daemon's own, `blocked` and `failed`
    /// included) or `sysfs` (read now, no daemon answering); nil in reports older than the field.
    public var source: String?
    /// The last hot-add whose devices came online; only the daemon knows it.
    public var lastHotAdd: HotAdd?

    public struct Memory: Sendable, Equatable, Codable {
        public var blockSizeBytes: Int
        public var ranges: [Range]
        public var totals: Totals
        public var blocks: [DeviceStatus]
    }

    /// Consecutive blocks alike in state, zone, node, DIMM and policy.
    public struct Range: Sendable, Equatable, Codable {
        public var firstBlock: Int
        public var lastBlock: Int
        public var startAddress: Int
        public var endAddress: Int
        public var sizeBytes: Int
        public var state: DeviceState
        public var zone: String?
        public var node: Int?
        public var dimm: String?
        public var policy: String?
    }

    /// Bytes online, per zone and per node (keys are zone names and node numbers as text), and offline.
    public struct Totals: Sendable, Equatable, Codable {
        public var onlineBytes: Int
        public var offlineBytes: Int
        public var onlineBytesByZone: [String: Int]
        public var onlineBytesByNode: [String: Int]
    }

    /// The JSON form: snake_case keys, sorted, as `status --json` prints and the control socket sends.
    public func json(pretty: Bool) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = pretty ? [.prettyPrinted, .sortedKeys] : [.sortedKeys]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        return try encoder.encode(self)
    }

    public init(devices: [DeviceStatus], blockSizeBytes: Int) {
        schemaVersion = Self.currentSchemaVersion
        cpus = devices.filter { $0.kind == .cpu }.sorted { $0.index < $1.index }
        let blocks = devices.filter { $0.kind == .memory }.sorted { $0.index < $1.index }
        var ranges: [Range] = []
        var totals = Totals(onlineBytes: 0, offlineBytes: 0, onlineBytesByZone: [:], onlineBytesByNode: [:])
        for block in blocks {
            if block.state == .online {
                totals.onlineBytes += blockSizeBytes
                totals.onlineBytesByZone[block.zone ?? "unknown", default: 0] += blockSizeBytes
                totals.onlineBytesByNode[block.node.map(String.init) ?? "unknown", default: 0] += blockSizeBytes
            } else {
                totals.offlineBytes += blockSizeBytes
            }
            if var last = ranges.last, last.lastBlock + 1 == block.index, last.state == block.state,
                last.zone == block.zone, last.node == block.node, last.dimm == block.dimm, last.policy == block.policy
            {
                last.lastBlock = block.index
                last.endAddress += blockSizeBytes
                last.sizeBytes += blockSizeBytes
                ranges[ranges.count - 1] = last
            } else {
                let start = block.index * blockSizeBytes
                ranges.append(
                    Range(
                        firstBlock: block.index, lastBlock: block.index, startAddress: start,
                        endAddress: start + blockSizeBytes - 1, sizeBytes: blockSizeBytes, state: block.state,
                        zone: block.zone, node: block.node, dimm: block.dimm, policy: block.policy))
            }
        }
        memory = Memory(blockSizeBytes: blockSizeBytes, ranges: ranges, totals: totals, blocks: blocks)
    }

    /// The report as tables for a terminal.
    public var text: String {
        var cpuRows: [[String]] = []
        var previous: DeviceStatus?
        for cpu in cpus {
            if let last = previous, last.index + 1 == cpu.index, last.state == cpu.state, last.node == cpu.node,
                last.policy == cpu.policy, var row = cpuRows.popLast()
            {
                row[0] = "\(row[0].split(separator: "-").first!)-\(cpu.index)"
                cpuRows.append(row)
            } else {
                cpuRows.append([
                    "\(cpu.index)", cpu.state.rawValue, cpu.node.map(String.init) ?? "-", cpu.policy ?? "-",
                ])
            }
            previous = cpu
        }
        let memoryRows = memory.ranges.map { range in
            [
                "0x\(Self.hex(range.startAddress))-0x\(Self.hex(range.endAddress))", Self.size(range.sizeBytes),
                range.state.rawValue, range.zone ?? "-", range.node.map(String.init) ?? "-", range.dimm ?? "-",
                range.firstBlock == range.lastBlock ? "\(range.firstBlock)" : "\(range.firstBlock)-\(range.lastBlock)",
                range.policy ?? "-",
            ]
        }
        let totals = memory.totals
        let notes = ([lastHotAdd.map(Self.line)] + (cpus + memory.blocks).map(Self.problem)).compactMap { $0 }
        let zones = totals.onlineBytesByZone.sorted { $0.key < $1.key }.map { "\($0.key) \(Self.size($0.value))" }
        let nodes = totals.onlineBytesByNode.sorted { $0.key < $1.key }.map { "node \($0.key) \(Self.size($0.value))" }
        return [
            Self.table(["CPU", "STATE", "NODE", "POLICY"], cpuRows, rightAligned: []),
            Self.table(
                ["RANGE", "SIZE", "STATE", "ZONE", "NODE", "DIMM", "BLOCKS", "POLICY"], memoryRows, rightAligned: [1]),
            """
            Memory block size:  \(Self.size(memory.blockSizeBytes))
            Total online memory:  \(Self.size(totals.onlineBytes))\(zones.isEmpty ? "" : " (\(zones.joined(separator: ", ")); \(nodes.joined(separator: ", ")))")
            Total offline memory: \(Self.size(totals.offlineBytes))
            """ + (memoryOnlining.map { "\n" + $0.text } ?? ""),
        ].joined(separator: "\n\n") + (notes.isEmpty ? "" : "\n\n" + notes.joined(separator: "\n"))
    }

    /// `Last hot-add: memory32-95 (64 blocks) online 0.53 s after the first add (by kernel), at ...`.
    static func line(_ hotAdd: HotAdd) -> String {
        let seconds = (hotAdd.secondsToOnline * 1000).rounded() / 1000
        return "Last hot-add: \(hotAdd.range) online \(seconds) s after the first add (by \(hotAdd.onlinedBy)), "
            + "at \(OperatorIntent.utcTime(hotAdd.finished))"
    }

    /// A line for a device hotplugd could not online: what the kernel said, since when, and what
    /// happens next.
    static func problem(_ device: DeviceStatus) -> String? {
        guard device.state == .failed || device.state == .blocked else { return nil }
        let error = device.errno.map { "errno \($0) (\(String(cString: strerror($0))))" } ?? "no errno"
        let since = device.since.map { " since \(OperatorIntent.utcTime($0))" } ?? ""
        let next =
            device.state == .blocked
            ? "the kernel forbids onlining it (for a CPU: SMT control); not tried again"
            : "tried again after a wait (doubling up to 5 minutes) and after a rescan; `hotplugd online` tries now"
        return "\(device.device) \(device.state.rawValue)\(since): \(error); \(next)"
    }

    static func table(_ header: [String], _ rows: [[String]], rightAligned: Set<Int>) -> String {
        let widths = header.indices.map { column in ([header] + rows).map { $0[column].count }.max()! }
        return ([header] + rows).map { row in
            row.indices.map { column in
                let padding = String(repeating: " ", count: widths[column] - row[column].count)
                return rightAligned.contains(column) ? padding + row[column] : row[column] + padding
            }.joined(separator: "  ").trimmingWhitespace().description
        }.joined(separator: "\n")
    }

    /// Sizes as lsmem writes them: 128M, 2G, 1.5G.
    static func size(_ bytes: Int) -> String {
        let units = ["B", "K", "M", "G", "T", "P"]
        var value = Double(bytes)
        var unit = 0
        while value >= 1024 && unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        let rounded = (value * 10).rounded() / 10
        return rounded == rounded.rounded() ? "\(Int(rounded))\(units[unit])" : "\(rounded)\(units[unit])"
    }

    static func hex(_ value: Int) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: max(0, 16 - digits.count)) + digits
    }
}
