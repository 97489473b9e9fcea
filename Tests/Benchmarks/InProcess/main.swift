import Glibc
import HotplugCore
import HotplugDaemon
import HotplugFixtures
import HotplugSystem
import Logging

/// The daemon's own costs, measured in process on a sysfs tree of plain files in /dev/shm:
///
/// - `events N`: a recorded trace of 2N events (`add` then `online` for N memory blocks in DIMMs
///   of 64 blocks), each handed to the core as the monitor hands a batch on: decode, state machine,
///   policy, and the sysfs write issued. Per-event times, for `online_movable` (one write per
///   `add`) and `auto-movable` (the first `add` of a DIMM onlines all of it).
/// - `burst N`: a DIMM's N `add` events handed to the core as one batch (`online_movable`): the
///   time until its first write has ended and until all N are written.
/// - `scan BLOCKS CPUS`: the start-up scan of that many memory blocks and CPUs: time and the
///   memory it takes, and the floor: the same tree's attributes read in a bare loop, no engine.
/// - `writes N`: N online and offline writes through the `Actuator`, without a time limit and
///   with one (each write then on a thread of its own): what that thread costs a write.
///
/// Prints one JSON object per measurement on standard output.
@main
struct Bench {
    static func main() throws {
        let arguments = CommandLine.arguments.dropFirst()
        switch arguments.first {
        case "events":
            let blocks = Int(arguments.dropFirst().first ?? "") ?? 50_000
            for type in [MemoryOnlineType.onlineMovable, .autoMovable] {
                try events(blocks: blocks, onlineType: type)
            }
        case "burst":
            try burst(blocks: Int(arguments.dropFirst().first ?? "") ?? 256)
        case "scan":
            let blocks = Int(arguments.dropFirst().first ?? "") ?? 100_000
            let cpus = Int(arguments.dropFirst(2).first ?? "") ?? 4096
            try scan(blocks: blocks, cpus: cpus)
        case "writes":
            try writes(Int(arguments.dropFirst().first ?? "") ?? 10_000)
        default:
            print("usage: hotplugd-bench events [BLOCKS] | burst [BLOCKS] | scan [BLOCKS] [CPUS] | writes [COUNT]")
            exit(64)
        }
    }

    static let quiet = Logger(label: "bench") { _ in SwiftLogNoOpLogHandler() }

    static func events(blocks: Int, onlineType: MemoryOnlineType) throws {
        let tree = try FakeSysfsTree(parent: "/dev/shm")
        try tree.addCPU(0, online: nil)
        for index in 0..<8 { try tree.addMemory(index, online: true, zones: "Normal") }
        var config = Config()
        config.memory.onlineType = onlineType
        // Ratio large enough that every DIMM of the trace may be movable.
        config.memory.autoMovableRatio = 100_000
        let engine = CoreDriver(config: config, sysfs: try Sysfs(root: tree.root), logger: quiet)
        try engine.start()
        // The hot-added blocks appear after the start, as on a real hot-add (and are all there
        // before their events are read, as when the daemon reads a burst).
        let first = 64
        for index in first..<(first + blocks) {
            try tree.addMemory(index, zones: "Normal Movable", dimm: "PNP0C80:\(String(index / 64, radix: 16))")
        }

        var trace: [RawUevent] = []
        for index in first..<(first + blocks) {
            trace.append(FakeSysfsTree.event("add", "memory\(index)", seqnum: trace.count + 1))
            trace.append(FakeSysfsTree.event("online", "memory\(index)", seqnum: trace.count + 1))
        }
        var samples: [Duration] = []
        var byAction: [String: [Duration]] = [:]
        samples.reserveCapacity(trace.count)
        let clock = ContinuousClock()
        let started = clock.now
        for event in trace {
            let before = clock.now
            engine.handle([event])
            // As the daemon's loop does after every input, for hooks and metrics.
            _ = engine.takeChanges()
            _ = engine.takeOperations()
            let took = clock.now - before
            samples.append(took)
            byAction[event.action!, default: []].append(took)
        }
        let total = clock.now - started
        // Plain files keep what was written (`online_movable`), not what the kernel would show.
        let written = (first..<(first + blocks)).filter { tree.state("memory\($0)")?.hasPrefix("online") == true }.count
        precondition(written == blocks, "only \(written) of \(blocks) blocks were written online")
        samples.sort()
        func percentile(_ p: Double, of samples: [Duration]) -> Double {
            micros(samples[min(samples.count - 1, Int(Double(samples.count) * p))])
        }
        func percentile(_ p: Double) -> Double { percentile(p, of: samples) }
        let add = byAction["add"]!.sorted()
        let online = byAction["online"]!.sorted()
        report([
            "measure": "\"events\"", "online_type": "\"\(onlineType.rawValue)\"", "events": "\(trace.count)",
            "p50_us": format(percentile(0.5)), "p90_us": format(percentile(0.9)), "p99_us": format(percentile(0.99)),
            "max_us": format(micros(samples.last!)), "mean_us": format(micros(total) / Double(trace.count)),
            "add_p50_us": format(percentile(0.5, of: add)), "add_p99_us": format(percentile(0.99, of: add)),
            "online_p50_us": format(percentile(0.5, of: online)), "online_p99_us": format(percentile(0.99, of: online)),
        ])
    }

    /// A DIMM's `add` events handed to the core as one batch, as the monitor hands them on once
    /// the kernel's add is over: the core's work before its first write (decode, state machine,
    /// policy for every block) is time no block is onlined in, and the total includes the writes.
    static func burst(blocks: Int) throws {
        let tree = try FakeSysfsTree(parent: "/dev/shm")
        try tree.addCPU(0, online: nil)
        for index in 0..<8 { try tree.addMemory(index, online: true, zones: "Normal") }
        var config = Config()
        config.memory.onlineType = .onlineMovable
        let engine = CoreDriver(config: config, sysfs: try Sysfs(root: tree.root), logger: quiet)
        try engine.start()
        var untilFirstWrite: [Duration] = []
        var total: [Duration] = []
        for dimm in 0..<21 {
            let first = 64 + dimm * blocks
            for index in first..<(first + blocks) {
                try tree.addMemory(index, zones: "Normal Movable", dimm: "PNP0C80:\(String(dimm, radix: 16))")
            }
            let adds = (first..<(first + blocks)).map { FakeSysfsTree.event("add", "memory\($0)", seqnum: $0) }
            let started = ContinuousClock.now
            // Each block's time to online (the daemon's metric) counts from `started`, the
            // events' time, to the end of its write.
            engine.handle(adds, now: started)
            let ended = ContinuousClock.now
            _ = engine.takeChanges()
            let written = engine.takeOperations().compactMap(\.sinceAdded)
            // The first DIMM warms the process up.
            if dimm > 0, let firstOnline = written.min() {
                untilFirstWrite.append(firstOnline)
                total.append(ended - started)
            }
        }
        precondition(untilFirstWrite.count == 20, "a DIMM's adds led to no write")
        let median = { (samples: [Duration]) in micros(samples.sorted()[samples.count / 2]) }
        report([
            "measure": "\"burst\"", "blocks": "\(blocks)", "until_first_write_us": format(median(untilFirstWrite)),
            "total_us": format(median(total)),
        ])
    }

    static func scan(blocks: Int, cpus: Int) throws {
        let tree = try FakeSysfsTree(parent: "/dev/shm")
        try tree.addCPU(0, online: nil)
        for index in 1..<cpus { try tree.addCPU(index, online: true) }
        for index in 0..<blocks {
            // Boot memory in Normal, hot-added DIMMs of 64 blocks in Movable after the first 8.
            let hot = index >= 8
            try tree.addMemory(
                index, online: true, zones: hot ? "Movable" : "Normal",
                dimm: hot ? "PNP0C80:\(String(index / 64, radix: 16))" : nil)
        }
        let memoryBefore = residentBytes()
        let clock = ContinuousClock()
        let started = clock.now
        let engine = CoreDriver(config: Config(), sysfs: try Sysfs(root: tree.root), options: dryRun(), logger: quiet)
        try engine.start()
        let elapsed = clock.now - started
        let counts = engine.core.deviceCounts()
        precondition(
            counts[.memory]?[.online] == blocks && counts[.cpu]?[.online] == cpus, "scan missed devices: \(counts)")
        let growth = residentBytes() - memoryBefore
        let floor = try readEveryDevice(Sysfs(root: tree.root))
        report([
            "measure": "\"scan\"", "blocks": "\(blocks)", "cpus": "\(cpus)", "seconds": format(seconds(elapsed)),
            "resident_growth_bytes": "\(growth)", "floor_seconds": format(seconds(floor)),
        ])
        withExtendedLifetime(engine) {}
    }

    static func writes(_ count: Int) throws {
        let tree = try FakeSysfsTree(parent: "/dev/shm")
        try tree.addCPU(0, online: nil)
        try tree.addCPU(1, online: true)
        let cpu = DeviceID(kind: .cpu, index: 1)!
        let sysfs = try Sysfs(root: tree.root)
        var perWrite: [String: Double] = [:]
        // Twice each, the first run warming up; the second is reported.
        for limit in [nil, Duration.seconds(120), nil, .seconds(120)] {
            let actuator = Actuator(sysfs: sysfs, timeLimit: limit)
            let clock = ContinuousClock()
            let started = clock.now
            for index in 0..<count {
                let result = index % 2 == 0 ? actuator.offline(cpu) : actuator.online(cpu, value: "1")
                precondition(result.outcome == .succeeded, "write \(index): \(result)")
            }
            perWrite[limit == nil ? "without" : "with"] = micros(clock.now - started) / Double(count)
        }
        report([
            "measure": "\"writes\"", "writes": "\(count)", "without_limit_us": format(perWrite["without"]!),
            "with_limit_us": format(perWrite["with"]!), "thread_us": format(perWrite["with"]! - perWrite["without"]!),
        ])
    }

    /// What any scan must do: list the devices and the node links, read each block's state,
    /// zones and DIMM link and each CPU's `online`, and keep nothing.
    static func readEveryDevice(_ sysfs: Sysfs) throws -> Duration {
        let clock = ContinuousClock()
        let started = clock.now
        _ = try sysfs.nodeMembership()
        for id in try sysfs.devices(.memory) {
            _ = try sysfs.read(id, "state")
            _ = try sysfs.read(id, "valid_zones")
            _ = try sysfs.link(id, "firmware_node")
        }
        for id in try sysfs.devices(.cpu) { _ = try? sysfs.read(id, "online") }
        return clock.now - started
    }

    static func dryRun() -> DecisionCore.Options {
        var options = DecisionCore.Options()
        options.dryRun = true
        return options
    }

    /// Resident memory of this process, from /proc/self/statm.
    static func residentBytes() -> Int {
        let fields = ((try? TextFile.read("/proc/self/statm")) ?? "").split(separator: " ")
        return fields.count > 1 ? (Int(fields[1]) ?? 0) * Int(sysconf(Int32(_SC_PAGESIZE))) : 0
    }

    static func micros(_ duration: Duration) -> Double {
        Double(duration.components.seconds) * 1e6 + Double(duration.components.attoseconds) / 1e12
    }

    static func seconds(_ duration: Duration) -> Double { micros(duration) / 1e6 }

    static func format(_ value: Double) -> String {
        let rounded = (value * 1000).rounded() / 1000
        return "\(rounded)"
    }

    static func report(_ fields: KeyValuePairs<String, String>) {
        print("{" + fields.map { "\"\($0.key)\": \($0.value)" }.joined(separator: ", ") + "}")
    }
}
