import Glibc
import HotplugCore
import HotplugSystem
import Logging

/// Warns once, at start, about others that online the same devices: the kernel's own
/// auto-online and udev rules. Each warning says how to hand the job to hotplugd.
public struct ConflictCheck: Sendable {
    /// udev's rules directories, highest priority first: a file in an earlier one hides a file of
    /// the same name in a later one, and a link to /dev/null there masks it.
    public var ruleDirectories = [
        "/etc/udev/rules.d", "/run/udev/rules.d", "/usr/lib/udev/rules.d", "/lib/udev/rules.d",
    ]

    public init() {}

    /// `onlining`: who onlines memory now. In kernel mode auto_online_blocks is hotplugd's own
    /// setting, not a conflict.
    public func warn(sysfs: any SysfsAccess, onlining: MemoryOnlining, logger: Logger) {
        if !onlining.isKernel { warnAboutAutoOnline(sysfs: sysfs, logger: logger) }
        for (path, kinds) in conflictingRules() {
            let name = String(path.split(separator: "/").last!)
            logger.warning(
                "a udev rule onlines \(kinds.map(\.rawValue).sorted().joined(separator: " and ")) devices too and races hotplugd",
                metadata: ["rule": "\(path)", "fix": "mask it: ln -s /dev/null /etc/udev/rules.d/\(name)"])
        }
    }

    private func warnAboutAutoOnline(sysfs: any SysfsAccess, logger: Logger) {
        let autoOnline: String?
        do {
            autoOnline = try sysfs.autoOnlineBlocks()
        } catch {
            logger.notice(
                "cannot read auto_online_blocks; whether the kernel onlines memory itself is unknown",
                metadata: ["error": "\(error)"])
            autoOnline = nil
        }
        if let blocks = autoOnline, blocks != "offline" {
            logger.warning(
                "the kernel onlines new memory itself, and not by hotplugd's policy: it applies only to blocks found offline",
                metadata: [
                    "auto_online_blocks": "\(blocks)",
                    "fix":
                        "boot with memhp_default_state=offline, or echo offline > /sys/devices/system/memory/auto_online_blocks",
                ])
        }
    }

    /// The effective rule files that online CPUs or memory.
    public func conflictingRules() -> [(path: String, kinds: Set<DeviceKind>)] {
        var seen = Set<String>()
        var found: [(String, Set<DeviceKind>)] = []
        for directory in ruleDirectories {
            guard let stream = opendir(directory) else { continue }
            defer { closedir(stream) }
            var names: [String] = []
            while let entry = readdir(stream) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) {
                    String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self)
                }
                if name.hasSuffix(".rules") { names.append(name) }
            }
            for name in names.sorted() where seen.insert(name).inserted {
                let path = "\(directory)/\(name)"
                let text: String
                do {
                    text = try TextFile.read(path)  // A mask (a link to /dev/null) reads as empty.
                } catch {
                    // A rule file hotplugd cannot read cannot be judged; it is not a conflict it knows of.
                    continue
                }
                let kinds = UdevRuleCheck.onlinedKinds(in: text)
                if !kinds.isEmpty { found.append((path, kinds)) }
            }
        }
        return found
    }
}
