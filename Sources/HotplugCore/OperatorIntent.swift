/// Devices somebody wants offline, so the policy leaves them alone.
///
/// A device taken offline by anyone but hotplugd (an admin, tuned, a kdump initrd) or by
/// `hotplugd offline` stays offline until somebody onlines it or it is removed, across daemon
/// restarts and reboots. The set is kept in a small text file, one line per run of devices of one
/// kind with consecutive numbers, taken offline by the same hand at the same second, so that its
/// size grows with the number of runs, not of devices (a 4 TiB DIMM offlined at once is one line):
///
///     # hotplugd operator intent: devices kept offline
///     cpu3 observed 1796000000
///     memory40-71 command 1796000012
///
/// Writer and reader share one limit (`maximumFileBytes`): a file the reader would refuse is
/// never written.
public struct OperatorIntent: Sendable, Equatable {
    /// Who took the device offline.
    public enum Origin: String, Sendable, Codable, CaseIterable {
        /// hotplugd saw an `offline` event it did not cause.
        case observed
        /// `hotplugd offline`: honoured even under `enforce`, since it prepares a removal.
        case command
    }

    public struct Entry: Sendable, Equatable, Codable, CustomStringConvertible {
        public var origin: Origin
        /// Seconds since the epoch.
        public var since: Int

        public init(origin: Origin, since: Int) {
            self.origin = origin
            self.since = since
        }

        public var description: String {
            let who = origin == .command ? "hotplugd offline" : "somebody else"
            return "taken offline by \(who) at \(OperatorIntent.utcTime(since))"
        }
    }

    /// A line of the file that is not an entry.
    public struct BadLine: Error, Sendable, Equatable, CustomStringConvertible {
        public var line: Int
        public var text: String
        public var description: String {
            "line \(line): not `DEVICE[-LAST] observed|command SECONDS`: \(text.debugDescription)"
        }
    }

    /// The largest intent file written or read: 1 MiB, some 30,000 runs of devices.
    public static let maximumFileBytes = 1 << 20
    /// The most devices a file may name: 2^20, 128 TiB in 128 MiB blocks or 2 PiB in 2 GiB ones;
    /// a bound on what a corrupt run (`memory0-16777215`) can make the reader allocate.
    public static let maximumDevices = 1 << 20

    public private(set) var entries: [DeviceID: Entry] = [:]

    public init(entries: [DeviceID: Entry] = [:]) {
        self.entries = entries
    }

    /// Parses the file; lines that are not entries are returned, not fatal, so one bad line
    /// never loses the others.
    public static func parse(_ text: String) -> (intent: OperatorIntent, badLines: [BadLine]) {
        var intent = OperatorIntent()
        var bad: [BadLine] = []
        for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let trimmed = line.trimmingWhitespace()
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            let fields = trimmed.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count == 3, let (first, last) = Self.run(fields[0]),
                intent.entries.count + (last.index - first.index) < maximumDevices,
                let origin = Origin(rawValue: String(fields[1])), let since = Int(fields[2]), since >= 0
            else {
                bad.append(BadLine(line: number + 1, text: String(line.prefix(200))))
                continue
            }
            for index in first.index...last.index {
                intent.entries[DeviceID(kind: first.kind, index: index)!] = Entry(origin: origin, since: since)
            }
        }
        return (intent, bad)
    }

    /// `memory40` or `memory40-71`: the first and last device of a run.
    private static func run(_ field: Substring) -> (DeviceID, DeviceID)? {
        let parts = field.split(separator: "-", omittingEmptySubsequences: false)
        guard let first = DeviceID(name: parts[0]) else { return nil }
        if parts.count == 1 { return (first, first) }
        guard parts.count == 2, let last = DeviceID(name: "\(first.kind.directoryName)\(parts[1])"),
            last.index > first.index
        else { return nil }
        return (first, last)
    }

    public var text: String {
        var lines = ["# hotplugd operator intent: devices kept offline"]
        var runStart: (DeviceID, Entry)?
        var previous: DeviceID?
        func close() {
            guard let (first, entry) = runStart, let last = previous else { return }
            let name = first == last ? first.name : "\(first.name)-\(last.index)"
            lines.append("\(name) \(entry.origin.rawValue) \(entry.since)")
        }
        for id in entries.keys.sorted() {
            let entry = entries[id]!
            if let (first, runEntry) = runStart, let last = previous, first.kind == id.kind,
                last.index + 1 == id.index, runEntry == entry
            {
                previous = id
                continue
            }
            close()
            runStart = (id, entry)
            previous = id
        }
        close()
        return lines.joined(separator: "\n") + "\n"
    }

    public subscript(device: DeviceID) -> Entry? {
        get { entries[device] }
        set { entries[device] = newValue }
    }

    public var isEmpty: Bool { entries.isEmpty }

    /// `2026-11-29 21:40:00 UTC`, without a calendar library (days-to-civil, proleptic Gregorian).
    public static func utcTime(_ seconds: Int) -> String {
        let days = seconds >= 0 ? seconds / 86400 : (seconds - 86399) / 86400
        let secondOfDay = seconds - days * 86400
        let shifted = days + 719_468
        let era = (shifted >= 0 ? shifted : shifted - 146_096) / 146_097
        let dayOfEra = shifted - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        func two(_ value: Int) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return
            "\(year)-\(two(month))-\(two(day)) \(two(secondOfDay / 3600)):\(two(secondOfDay / 60 % 60)):\(two(secondOfDay % 60)) UTC"
    }
}
