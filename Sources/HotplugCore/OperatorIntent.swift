/// Devices somebody wants offline, so the policy leaves them alone.
///
/// A device taken offline by anyone but hotplugd (an admin, tuned, a kdump initrd) or by
/// `hotplugd offline` stays offline until somebody onlines it or it is removed, across daemon
/// restarts and reboots. The set is kept in a small text file, one device per line:
///
///     # hotplugd operator intent: devices kept offline
///     cpu3 observed 1796000000
///     memory40 command 1796000012
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
            "line \(line): not `DEVICE observed|command SECONDS`: \(text.debugDescription)"
        }
    }

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
            guard fields.count == 3, let device = DeviceID(name: fields[0]),
                let origin = Origin(rawValue: String(fields[1])), let since = Int(fields[2]), since >= 0
            else {
                bad.append(BadLine(line: number + 1, text: String(line.prefix(200))))
                continue
            }
            intent.entries[device] = Entry(origin: origin, since: since)
        }
        return (intent, bad)
    }

    public var text: String {
        let lines = entries.keys.sorted().map { "\($0.name) \(entries[$0]!.origin.rawValue) \(entries[$0]!.since)" }
        return (["# hotplugd operator intent: devices kept offline"] + lines).joined(separator: "\n") + "\n"
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
