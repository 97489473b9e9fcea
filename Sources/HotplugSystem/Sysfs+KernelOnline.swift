import CHotplug
import Glibc
import HotplugCore

import struct SystemPackage.Errno
import struct SystemPackage.FileDescriptor

/// The kernel's own onlining settings (see `MemoryOnlining`), reached like every other attribute:
/// below a directory descriptor taken at start, without following links.
extension Sysfs {
    /// Which of the settings this kernel has.
    public func kernelOnlineSupport() -> KernelOnlineSupport {
        KernelOnlineSupport(
            autoOnlineBlocks: location(of: .autoOnlineBlocks).map { Self.exists($0.name, in: $0.directory) } ?? false,
            onlinePolicy: location(of: .onlinePolicy).map { Self.exists($0.name, in: $0.directory) } ?? false)
    }

    /// The setting's value as the kernel shows it; nil when this kernel does not have it.
    public func read(_ setting: KernelOnlineSettings.Setting) throws(SysfsError) -> String? {
        guard let (directory, name, path) = location(of: setting) else { return nil }
        do throws(Errno) {
            return try Self.readFile(at: directory, name)
        } catch  where error == .noSuchFileOrDirectory {
            return nil
        } catch {
            throw SysfsError(path: path, operation: "read", errno: error)
        }
    }

    public func write(_ setting: KernelOnlineSettings.Setting, _ value: String) throws(SysfsError) {
        let found = location(of: setting)
        let path = found?.path ?? "\(root)/module/memory_hotplug/parameters/\(setting.rawValue)"
        do throws(Errno) {
            guard let (directory, name, _) = found else { throw Errno.noSuchFileOrDirectory }
            let fd = try Self.openAt(directory, name, flags: O_WRONLY | O_TRUNC)
            defer { fd.closeAfterUse() }
            try Self.store(value, in: fd)
        } catch {
            throw SysfsError(path: path, operation: "write", errno: error)
        }
    }

    private func location(
        of setting: KernelOnlineSettings.Setting
    ) -> (directory: FileDescriptor, name: String, path: String)? {
        if setting == .autoOnlineBlocks {
            return (kindDirectories[.memory]!, setting.rawValue, "\(root)/devices/system/memory/\(setting.rawValue)")
        }
        guard let memoryHotplugParameters else { return nil }
        return (
            memoryHotplugParameters, setting.rawValue, "\(root)/module/memory_hotplug/parameters/\(setting.rawValue)"
        )
    }

    /// Whether a setting's file is there. Any error counts as absent on purpose: a setting that
    /// cannot even be looked up cannot be set either, and the plan then says the kernel lacks it.
    private static func exists(_ name: String, in directory: FileDescriptor) -> Bool {
        do throws(Errno) {
            try openAt(directory, name, flags: chotplug_O_PATH).closeAfterUse()
            return true
        } catch {
            return false
        }
    }
}
