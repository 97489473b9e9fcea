import Glibc
import HotplugCore
import HotplugSystem
import Logging

import struct SystemPackage.Errno

/// Puts a `MemoryOnlining` plan into the kernel's settings, and puts the kernel's own values back.
///
/// Before it changes a setting it records the value it found, in `kernel-online` in the runtime
/// directory, so that the values can be put back whatever happens in between: a clean stop
/// writes them back and removes the record (a stopped hotplugd onlines nothing); a crash or a
/// watchdog restart leaves both, so memory hot-added meanwhile is still onlined, and the next start
/// takes the record over. A setting it cannot record is not changed: memory is then onlined from
/// userspace, never left with settings nobody knows how to undo.
public final class KernelOnlineControl {
    public typealias Setting = KernelOnlineSettings.Setting

    let sysfs: Sysfs
    /// The runtime directory, where the found values are recorded; nil records nothing (a test
    /// tree, not this machine).
    let runtime: OwnDirectory?
    var recordPath: String? { runtime?.path(of: Self.recordName) }
    static let recordName = "kernel-online"
    let logger: Logger
    /// The value found before hotplugd changed it, for each setting it changed.
    private(set) var found: [Setting: String] = [:]
    /// What hotplugd wants the settings to read (what it wrote, or found already so).
    private(set) var wanted = KernelOnlineSettings()
    /// The mode in force since the last `apply`.
    public private(set) var mode = MemoryOnlining.userspace(reason: "not applied yet")

    public init(sysfs: Sysfs, runtimeDirectory: OwnDirectory?, logger: Logger) {
        self.sysfs = sysfs
        self.runtime = runtimeDirectory
        self.logger = logger
        takeOverRecord()
    }

    /// Compiles the memory policy for this kernel (see `MemoryOnlining.plan`) and applies it.
    @discardableResult
    public func apply(_ memory: Config.Memory) -> MemoryOnlining {
        apply(MemoryOnlining.plan(memory, kernel: sysfs.kernelOnlineSupport()))
    }

    /// Sets the kernel as `plan` says (every setting hotplugd changed before and no longer needs
    /// goes back to its found value), logs the mode in force, and returns it: a plan the kernel
    /// refuses, or whose found values cannot be recorded, becomes the userspace path, with why.
    @discardableResult
    public func apply(_ plan: MemoryOnlining) -> MemoryOnlining {
        let desired = plan.settings
        do {
            // Back first, newest first (auto_online_blocks before the policy it follows)...
            for setting in Setting.writeOrder.reversed() where desired[setting] == nil {
                if let value = found[setting] { try put(setting, value, restoring: true) }
            }
            // ...then the plan's, auto_online_blocks last.
            for setting in desired.settings {
                try put(setting, desired[setting]!, restoring: false)
            }
            wanted = desired
            mode = plan
        } catch {
            logger.error(
                "cannot set the kernel's memory onlining; hotplugd onlines new blocks itself",
                metadata: ["error": "\(error)", "kind": "\(LogKind.memoryOnlining.rawValue)"])
            restore()
            mode = .userspace(reason: "the kernel's settings could not be set: \(error)")
        }
        log(mode)
        return mode
    }

    /// Looks at the settings hotplugd set; one that somebody else changed is logged and set again
    /// (hotplugd owns the policy: `memory.kernel_online = false` hands the settings back).
    public func verify() {
        for setting in wanted.settings {
            let value: String?
            do {
                value = try sysfs.read(setting)
            } catch {
                logger.warning(
                    "cannot read a kernel memory onlining setting",
                    metadata: ["setting": "\(setting.rawValue)", "error": "\(error)"])
                continue
            }
            guard let value, value != wanted[setting] else { continue }
            logger.warning(
                "somebody else changed a kernel memory onlining setting that hotplugd set; hotplugd sets it again",
                metadata: [
                    "setting": "\(setting.rawValue)", "found": "\(value)", "value": "\(wanted[setting]!)",
                    "fix": "set memory.kernel_online = false in the configuration to manage the setting yourself",
                    "kind": "\(LogKind.memoryOnlining.rawValue)",
                ])
            do {
                try sysfs.write(setting, wanted[setting]!)
            } catch {
                logger.error(
                    "cannot set a kernel memory onlining setting again",
                    metadata: ["setting": "\(setting.rawValue)", "error": "\(error)"])
            }
        }
    }

    /// Writes back every value hotplugd changed (auto_online_blocks first) and removes the record
    /// once all are back; a value that cannot be written back keeps its line in the record.
    public func restore() {
        var restored: [String] = []
        for setting in Setting.writeOrder.reversed() {
            guard let value = found[setting] else { continue }
            do {
                try sysfs.write(setting, value)
                found[setting] = nil
                restored.append("\(setting.rawValue)=\(value)")
            } catch {
                logger.error(
                    "cannot put a kernel memory onlining setting back",
                    metadata: ["setting": "\(setting.rawValue)", "value": "\(value)", "error": "\(error)"])
            }
        }
        wanted = KernelOnlineSettings()
        do {
            try storeRecord()
        } catch {
            logger.error("cannot update the record of kernel memory onlining settings", metadata: ["error": "\(error)"])
        }
        if !restored.isEmpty {
            logger.notice(
                "the kernel's earlier memory onlining settings restored",
                metadata: [
                    "settings": "\(restored.joined(separator: " "))", "kind": "\(LogKind.memoryOnlining.rawValue)",
                ])
        }
    }

    // MARK: - Settings and their record

    /// Writes one setting unless it reads so already; a value found before hotplugd's first
    /// change of it is recorded before the write.
    private func put(_ setting: Setting, _ value: String, restoring: Bool) throws {
        let current = try sysfs.read(setting)
        if current == value {
            if restoring { try forget(setting) }
            return
        }
        guard let current else { throw KernelOnlineError.missing(setting) }
        if !restoring && found[setting] == nil {
            found[setting] = current
            do {
                try storeRecord()
            } catch {
                found[setting] = nil
                throw KernelOnlineError.record(recordPath ?? "", "\(error)")
            }
        }
        try sysfs.write(setting, value)
        if restoring { try forget(setting) }
    }

    private func forget(_ setting: Setting) throws {
        guard found[setting] != nil else { return }
        found[setting] = nil
        try storeRecord()
    }

    /// One line per setting changed: `SETTING FOUND`; no file when nothing is changed.
    private func storeRecord() throws {
        guard let runtime else { return }
        if found.isEmpty {
            try runtime.remove(Self.recordName)
            return
        }
        let lines = Setting.allCases.compactMap { setting in found[setting].map { "\(setting.rawValue) \($0)" } }
        try runtime.write(
            Self.recordName,
            "# The kernel's memory onlining settings as hotplugd found them; a clean stop writes them back.\n"
                + lines.joined(separator: "\n") + "\n")
    }

    /// A record left by a hotplugd that did not stop cleanly: its found values are the ones to put
    /// back, not what the settings read now (which are that hotplugd's).
    private func takeOverRecord() {
        guard let runtime else { return }
        let text: String
        do {
            text = try runtime.read(Self.recordName)
        } catch let error as Errno where error == .noSuchFileOrDirectory {
            return
        } catch {
            logger.error(
                "cannot read the record of kernel memory onlining settings; what they were before hotplugd is unknown",
                metadata: ["path": "\(runtime.path(of: Self.recordName))", "error": "\(error)"])
            return
        }
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            let fields = line.split(separator: " ", maxSplits: 1)
            guard fields.count == 2, let setting = Setting(rawValue: String(fields[0])) else {
                logger.error("ignoring a line of the kernel memory onlining record", metadata: ["line": "\(line)"])
                continue
            }
            found[setting] = String(fields[1])
        }
        if !found.isEmpty {
            logger.notice(
                "taking over the kernel memory onlining settings an earlier hotplugd changed",
                metadata: [
                    "found":
                        "\(Setting.allCases.compactMap { s in found[s].map { "\(s.rawValue)=\($0)" } }.joined(separator: " "))",
                    "kind": "\(LogKind.memoryOnlining.rawValue)",
                ])
        }
    }

    private func log(_ mode: MemoryOnlining) {
        var metadata: Logger.Metadata = ["kind": "\(LogKind.memoryOnlining.rawValue)"]
        switch mode {
        case .kernel(let settings):
            metadata["mode"] = "kernel"
            for setting in Setting.allCases {
                if let value = settings[setting] { metadata[setting.rawValue] = "\(value)" }
            }
            logger.notice(
                "memory onlining: the kernel onlines new blocks inside the add, as hotplugd's policy says",
                metadata: metadata)
        case .userspace(let reason, let zones):
            metadata["mode"] = "userspace"
            metadata["reason"] = "\(reason)"
            for setting in Setting.allCases {
                if let value = zones?[setting] { metadata[setting.rawValue] = "\(value)" }
            }
            logger.notice("memory onlining: hotplugd onlines new blocks itself", metadata: metadata)
        }
    }
}

enum KernelOnlineError: Error, CustomStringConvertible {
    case record(String, String)
    case missing(KernelOnlineSettings.Setting)

    var description: String {
        switch self {
        case .record(let path, let error): "cannot record the values found in \(path): \(error)"
        case .missing(let setting): "this kernel has no \(setting.rawValue)"
        }
    }
}
