import HotplugCore
import HotplugSystem

/// Who onlines new memory on this machine, for `hotplugd status` and `check-config`: what the
/// configuration's policy gives on this kernel (see `MemoryOnlining.plan`), and whether the
/// kernel's settings read that way now (they do while hotplugd runs, not when it is stopped).
public struct MemoryOnliningStatus: Sendable, Equatable, Codable {
    /// `kernel` or `userspace`.
    public var mode: String
    /// Why memory is onlined from userspace.
    public var reason: String?
    /// The kernel's onlining settings as they read now.
    public var settings: [String: String]
    /// The settings the policy needs, where they differ from what they read now.
    public var differing: [String: String]

    public init(plan: MemoryOnlining, sysfs: Sysfs) {
        var settings: [String: String] = [:]
        var unreadable: [String: String] = [:]
        for setting in KernelOnlineSettings.Setting.allCases {
            do {
                if let value = try sysfs.read(setting) { settings[setting.rawValue] = value }
            } catch {
                unreadable[setting.rawValue] = "unreadable"
            }
        }
        self.settings = settings.merging(unreadable) { $1 }
        switch plan {
        case .kernel(let wanted):
            mode = "kernel"
            differing = [:]
            for setting in wanted.settings where settings[setting.rawValue] != wanted[setting] {
                differing[setting.rawValue] = wanted[setting]
            }
        case .userspace(let reason):
            mode = "userspace"
            self.reason = reason
            // Userspace onlining wants the kernel to leave new blocks offline.
            let autoOnline = settings[KernelOnlineSettings.Setting.autoOnlineBlocks.rawValue]
            differing = autoOnline.map { $0 == "offline" ? [:] : ["auto_online_blocks": "offline"] } ?? [:]
        }
    }

    /// One line for a terminal.
    public var text: String {
        let now = KernelOnlineSettings.Setting.allCases.compactMap { setting in
            settings[setting.rawValue].map { "\(setting.rawValue)=\($0)" }
        }.joined(separator: " ")
        let wanted = differing.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        switch (mode, differing.isEmpty) {
        case ("kernel", true):
            return "Memory onlining: by the kernel inside the add, as hotplugd set it (\(now))"
        case ("kernel", false):
            return "Memory onlining: by the kernel inside the add once hotplugd runs and sets \(wanted) (now: \(now))"
        case (_, true):
            return "Memory onlining: by hotplugd, because \(reason ?? "")"
        default:
            return "Memory onlining: by hotplugd, because \(reason ?? ""); but the kernel onlines new memory "
                + "itself too, not by this policy (now: \(now))"
        }
    }
}
