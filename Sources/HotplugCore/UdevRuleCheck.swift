/// Recognises udev rules that online CPUs or memory themselves, as distributions ship them
/// (RHEL `40-redhat.rules` and RHEL 10's `40-redhat-hotplug.rules`, SUSE
/// `80-hotplug-cpu-mem.rules`, Ubuntu `40-vm-hotadd.rules`): a rule that assigns `ATTR{online}` or
/// `ATTR{state}` and matches `SUBSYSTEM=="cpu"` or `"memory"`, on its own line or by standing in
/// a section that other subsystems skip (`SUBSYSTEM!="memory", GOTO="end"` ... `LABEL="end"`).
/// Such a rule races hotplugd for every hot-added device and picks the zone itself.
public enum UdevRuleCheck {
    /// The kinds of device the rules text onlines.
    public static func onlinedKinds(in rules: String) -> Set<DeviceKind> {
        var kinds = Set<DeviceKind>()
        // Sections only devices of one kind reach: their end label, and the kind.
        var sections: [String: DeviceKind] = [:]
        for rule in logicalLines(rules) {
            if let label = value(of: "LABEL=", in: rule) { sections[label] = nil }
            if let label = value(of: "GOTO=", in: rule) {
                for kind in DeviceKind.allCases where rule.contains("SUBSYSTEM!=\"\(kind.directoryName)\"") {
                    sections[label] = kind
                }
            }
            for kind in DeviceKind.allCases
            where rule.contains("SUBSYSTEM==\"\(kind.directoryName)\"") || sections.values.contains(kind) {
                if assigns(rule, kind.onlineAttribute) { kinds.insert(kind) }
            }
        }
        return kinds
    }

    /// The quoted value after `key` (`GOTO="x"` gives x), if the rule has one.
    static func value(of key: String, in rule: String) -> String? {
        guard let range = rule.range(of: key + "\"") else { return nil }
        let rest = rule[range.upperBound...]
        guard let end = rest.firstIndex(of: "\"") else { return nil }
        return String(rest[..<end])
    }

    /// `ATTR{name}="..."` or `ATTR{name}:="..."`, not the comparison `ATTR{name}=="..."`.
    static func assigns(_ rule: String, _ attribute: String) -> Bool {
        var rest = Substring(rule)
        let key = "ATTR{\(attribute)}"
        while let range = rest.range(of: key) {
            let after = rest[range.upperBound...].drop { $0 == " " }
            if after.hasPrefix(":=") || (after.hasPrefix("=") && !after.hasPrefix("==")) { return true }
            rest = rest[range.upperBound...]
        }
        return false
    }

    /// Rules without comments, with backslash-continued lines joined.
    static func logicalLines(_ text: String) -> [String] {
        var lines: [String] = []
        var pending = ""
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let trimmed = line.trimmingWhitespace()
            if pending.isEmpty && trimmed.hasPrefix("#") { continue }
            if trimmed.hasSuffix("\\") {
                pending += trimmed.dropLast() + " "
            } else {
                lines.append(pending + trimmed)
                pending = ""
            }
        }
        if !pending.isEmpty { lines.append(pending) }
        return lines
    }
}
