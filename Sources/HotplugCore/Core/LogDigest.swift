/// Memory blocks' transitions said as one line per run of alike blocks: a 32 GiB DIMM is one line
/// at info, "memory32-287: 256 blocks online", not 256 (each block's own line is kept at
/// debug). Lines are held while they keep coming, until `quiet` without one or `longest` after the
/// first, so that a DIMM whose blocks come online over several inputs is still one line. A run of
/// one block is said as its own line, at its own level.
public struct LogDigest: Sendable {
    public static let quiet: Duration = .milliseconds(100)
    public static let longest: Duration = .seconds(1)

    /// Alike: the same state reached, zone, node, value and who onlined it. Where they came from
    /// and what said so may differ (a DIMM's blocks are seen online at their `add` or by their
    /// `online` event, as the events and the reads interleave); the summary names them if alike.
    private struct Key: Hashable {
        var fields: [String: String]
    }

    /// Kept in a block's own line, left out of what makes blocks alike.
    private static let ownFields: Set<String> = ["device", "attempts", "from", "action"]

    private var held: [(key: Key, record: LogRecord, block: Int)] = []
    private var first: ContinuousClock.Instant?
    private var last: ContinuousClock.Instant?

    public init() {}

    /// Whether `record` is a memory block's transition at info, which the digest takes.
    public static func takes(_ record: LogRecord) -> Bool {
        record.level == .info && record.metadata["from"] != nil && record.metadata["to"] != nil
            && record.metadata["device"].flatMap(DeviceID.init(name:))?.kind == .memory
    }

    /// Holds a record `takes` accepted.
    public mutating func hold(_ record: LogRecord, now: ContinuousClock.Instant) {
        guard let id = record.metadata["device"].flatMap(DeviceID.init(name:)) else { return }
        let fields = record.metadata.filter { !Self.ownFields.contains($0.key) }
        held.append((Key(fields: fields), record, id.index))
        first = first ?? now
        last = now
    }

    /// When the held lines are due; nil when none are held.
    public var deadline: ContinuousClock.Instant? {
        guard let first, let last else { return nil }
        return min(last + Self.quiet, first + Self.longest)
    }

    /// The held lines, due or not (a stop says them before it goes): each block's at debug, then
    /// one per run of alike blocks at info.
    public mutating func take() -> [LogRecord] {
        defer {
            held = []
            first = nil
            last = nil
        }
        var order: [Key] = []
        var groups: [Key: [(record: LogRecord, block: Int)]] = [:]
        for entry in held {
            if groups[entry.key] == nil { order.append(entry.key) }
            groups[entry.key, default: []].append((entry.record, entry.block))
        }
        var debug: [LogRecord] = []
        var summaries: [LogRecord] = []
        for key in order {
            let group = groups[key]!
            guard group.count > 1 else {
                summaries.append(group[0].record)
                continue
            }
            for (record, _) in group {
                var quiet = record
                quiet.level = .debug
                debug.append(quiet)
            }
            let blocks = Set(group.map(\.block))
            let range = DeviceID.runs(blocks.compactMap { DeviceID(kind: .memory, index: $0) })
            var metadata = key.fields
            metadata["devices"] = range
            metadata["count"] = "\(blocks.count)"
            for field in ["from", "action"] {
                let values = Set(group.map { $0.record.metadata[field] })
                if values.count == 1, let value = values.first { metadata[field] = value }
            }
            summaries.append(LogRecord(.info, "\(range): \(blocks.count) blocks \(key.fields["to"] ?? "?")", metadata))
        }
        return debug + summaries
    }
}
