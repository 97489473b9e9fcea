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
        case .userspace(let reason, let zones):
            mode = "userspace"
            self.reason = reason
            differing = [:]
            for setting in zones?.settings ?? [] where settings[setting.rawValue] != zones?[setting] {
                differing[setting.rawValue] = zones?[setting]
            }
            // Userspace onlining wants the kernel to leave new blocks offline.
            if let autoOnline = settings[KernelOnlineSettings.Setting.autoOnlineBlocks.rawValue],
                autoOnline != "offline"
            {
                differing["auto_online_blocks"] = "offline"
            }
        }
    }

    /// One line for a terminal.
    public var text: String {
        let now = KernelOnlineSettings.Setting.allCases.compactMap { setting in
            settings[setting.rawValue].map { "\(setting.rawValue)=\($0)" }
        }.joined(separator: " ")
        var toSet = differing
        let foreignAutoOnline = mode == "userspace" ? toSet.removeValue(forKey: "auto_online_blocks") : nil
        let wanted = toSet.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        var line =
            mode == "kernel"
            ? "Memory onlining: by the kernel inside the add"
            : "Memory onlining: by hotplugd, because \(reason ?? "")"
        if !wanted.isEmpty { line += "; hotplugd sets \(wanted) when it runs" }
        if foreignAutoOnline != nil { line += "; but the kernel onlines new memory itself too, not by this policy" }
        return now.isEmpty ? line : line + " (now: \(now))"
    }
}
