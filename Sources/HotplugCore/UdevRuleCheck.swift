/// Recognises udev rules that online CPUs or memory themselves, as distributions ship them
/// (RHEL `40-redhat.rules`, SUSE `80-hotplug-cpu-mem.rules`, Ubuntu `40-vm-hotadd.rules`):
/// a rule matching `SUBSYSTEM=="cpu"` or `"memory"` that assigns `ATTR{online}` or `ATTR{state}`.
/// Such a rule races hotplugd for every hot-added device and picks the zone itself.
public enum UdevRuleCheck {
    /// The kinds of device the rules text onlines.
    public static func onlinedKinds(in rules: String) -> Set<DeviceKind> {
        var kinds = Set<DeviceKind>()
        for rule in logicalLines(rules) {
            for kind in DeviceKind.allCases where rule.contains("SUBSYSTEM==\"\(kind.directoryName)\"") {
                if assigns(rule, kind.onlineAttribute) { kinds.insert(kind) }
            }
        }
        return kinds
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
