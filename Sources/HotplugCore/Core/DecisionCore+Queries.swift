/// Read-only answers from what the core knows: `hotplugd status`, the values `hotplugd online`
/// writes, and the daemon's counts for metrics and systemd's STATUS=. None of them reads sysfs
/// or changes anything.
extension DecisionCore {
    /// Every present device with its state and what the policy would do if it is offline.
    public func status() -> [DeviceStatus] {
        let offlineBlocks = Set(records.filter { $0.key.kind == .memory && $0.value.state == .offline }.keys)
        let memory = memoryPolicyDecisions(for: offlineBlocks)
        let cpuPolicy = CPUPolicy(config: config.cpu)
        return records.sorted { $0.key < $1.key }.compactMap { id, record -> DeviceStatus? in
            guard record.isPresent else { return nil }
            var policy: String?
            let kept = intent[id].flatMap { honours($0, of: id) ? $0 : nil }
            if let kept, record.state == .offline {
                policy = PolicyDecision.leave(reason: kept.description).description
            } else if record.state == .offline && !mayOnline(id) {
                policy = PolicyDecision.leave(reason: "the intent file cannot be read whole").description
            } else if record.state == .offline {
                policy = (id.kind == .cpu ? cpuPolicy.decide(cpu: id.index) : memory[id])?.description
            }
            return DeviceStatus(
                device: id.name, kind: id.kind, index: id.index, state: record.state, zone: record.zone?.rawValue,
                node: record.node, dimm: record.block?.firmwareNode.map(Self.dimmName), policy: policy, intent: kept,
                since: record.stateSince, errno: record.errno, secondsToOnline: record.timeToOnline?.seconds)
        }
    }

    /// The values an operator's `hotplugd online` writes: what the policy would choose, as if
    /// auto-online were on for every device (the operator asked for them).
    public func onlineValues(for devices: [DeviceID]) -> [DeviceID: OnlineValue] {
        var asked = self
        asked.config.cpu = Config.CPU()
        asked.config.memory.autoOnline = true
        asked.config.memory.nodes = config.memory.nodes.map {
            Config.NodeRule(node: $0.node, onlineType: $0.onlineType)
        }
        var values: [DeviceID: OnlineValue] = [:]
        for id in devices where id.kind == .cpu { values[id] = .cpu }
        let blocks = Set(devices.filter { $0.kind == .memory })
        for (id, decision) in asked.memoryPolicyDecisions(for: blocks) where blocks.contains(id) {
            values[id] = decision.onlineValue ?? .online
        }
        return values
    }

    /// The state of every present device.
    public func presentDevices() -> [DeviceID: DeviceState] {
        records.compactMapValues { $0.isPresent ? $0.state : nil }
    }

    /// Present devices per kind and state.
    public func deviceCounts() -> [DeviceKind: [DeviceState: Int]] {
        var counts: [DeviceKind: [DeviceState: Int]] = [:]
        for (id, record) in records where record.isPresent {
            counts[id.kind, default: [:]][record.state, default: 0] += 1
        }
        return counts
    }

    /// Online memory blocks per zone and node (`unknown` where not read).
    public func onlineBlocksByZone() -> [ZoneAndNode: Int] {
        var counts: [ZoneAndNode: Int] = [:]
        for record in records.values where record.state == .online && record.block != nil {
            let key = ZoneAndNode(
                zone: record.zone?.rawValue ?? "unknown", node: record.node.map(String.init) ?? "unknown")
            counts[key, default: 0] += 1
        }
        return counts
    }

    /// Offline devices that intent keeps offline.
    public var keptOffline: Int {
        intent.entries.filter { records[$0.key]?.state == .offline && honours($0.value, of: $0.key) }.count
    }

    /// One line for systemd's STATUS=: devices per kind and state, and movable memory.
    public func summary() -> String {
        Self.summary(deviceCounts(), onlineBlocksByZone())
    }

    /// The STATUS= line from counts already taken.
    static func summary(_ counts: [DeviceKind: [DeviceState: Int]], _ blocks: [ZoneAndNode: Int]) -> String {
        let movable = blocks.filter { $0.key.zone == Zone.movable.rawValue }.values.reduce(0, +)
        return DeviceKind.allCases.map { kind in
            let states = DeviceState.allCases.compactMap { state in
                counts[kind]?[state].map { "\($0) \(state.rawValue)" }
            }
            let extra = kind == .memory && movable > 0 ? " (\(movable) movable)" : ""
            return "\(kind.rawValue): \(states.isEmpty ? "none" : states.joined(separator: ", "))\(extra)"
        }.joined(separator: "; ")
    }

    public struct ZoneAndNode: Hashable, Sendable {
        public var zone: String
        public var node: String
    }

    /// The ACPI device name at the end of a firmware_node link (e.g. `PNP0C80:00`).
    static func dimmName(_ link: String) -> String {
        String(link.split(separator: "/").last ?? Substring(link))
    }
}

/// What the daemon shows of the core between inputs: device counts for the metrics and one
/// line for systemd's STATUS=. Taken on the core's thread and handed on as a value.
public struct CoreSnapshot: Sendable, Equatable {
    public var deviceCounts: [DeviceKind: [DeviceState: Int]]
    public var onlineBlocksByZone: [DecisionCore.ZoneAndNode: Int]
    public var keptOffline: Int
    public var blockSizeBytes: Int
    public var summary: String
}

extension DecisionCore {
    /// Every record is counted once for all of it: the summary is made from the same counts.
    public func snapshot() -> CoreSnapshot {
        let counts = deviceCounts()
        let blocks = onlineBlocksByZone()
        return CoreSnapshot(
            deviceCounts: counts, onlineBlocksByZone: blocks, keptOffline: keptOffline, blockSizeBytes: blockSizeBytes,
            summary: Self.summary(counts, blocks))
    }
}
