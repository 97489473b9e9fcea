import CHotplug
import Glibc
import HotplugCore

import struct SystemPackage.Errno
import struct SystemPackage.FileDescriptor

/// The sysfs tree, reached only through directory descriptors.
///
/// Every path is opened below descriptors of `devices/system/cpu` and `devices/system/memory`
/// taken once at start: with one openat2(2) that refuses links and `..`, or, before Linux 5.6,
/// one component at a time with `O_NOFOLLOW`. Device names come from
/// validated `DeviceID`s and attribute names from this module, so a write can land nowhere but
/// in a CPU's or memory block's own attribute, and no symbolic link is ever followed on the way.
/// The root is configurable so that tests can run against a tree in a temporary directory.
public final class Sysfs: SysfsAccess {
    public let root: String
    let kindDirectories: [DeviceKind: FileDescriptor]
    /// `devices/system/node`, absent on kernels built without NUMA.
    private let nodeDirectory: FileDescriptor?
    /// `module/memory_hotplug/parameters`: the kernel's onlining policy (see `MemoryOnlining`);
    /// absent before Linux 5.12 and in test trees that leave it out.
    let memoryHotplugParameters: FileDescriptor?
    /// `firmware/memmap`, absent on kernels built without CONFIG_FIRMWARE_MEMMAP.
    private let firmwareMemoryMap: FileDescriptor?
    /// The map's entries read so far, by name: a "System RAM" range, or nil for another type.
    private let memoryMapEntries = Locked<[String: ClosedRange<Int>?]>([:])
    /// The mount point itself, for what may appear after the start (`bus/dax`, once its module loads).
    let rootDirectory: FileDescriptor
    /// Whether openat2(2) with RESOLVE_BENEATH works here (Linux 5.6 and later, and allowed by
    /// the seccomp filter): one system call per attribute instead of a walk of three.
    private let resolvesBeneath: Bool

    public init(root: String = "/sys") throws(SysfsError) {
        self.root = root
        var directories: [DeviceKind: FileDescriptor] = [:]
        var nodeDirectory: FileDescriptor?
        var parameters: FileDescriptor?
        var memoryMap: FileDescriptor?
        var rootFD = FileDescriptor(rawValue: -1)
        do throws(Errno) {
            rootFD = try Self.openAt(FileDescriptor(rawValue: AT_FDCWD), root, flags: chotplug_O_PATH | O_DIRECTORY)
            for kind in DeviceKind.allCases {
                directories[kind] = try Self.openPath(
                    from: rootFD, ["devices", "system", kind.directoryName], flags: chotplug_O_PATH | O_DIRECTORY)
            }
            do throws(Errno) {
                nodeDirectory = try Self.openPath(
                    from: rootFD, ["devices", "system", "node"], flags: chotplug_O_PATH | O_DIRECTORY)
            } catch  where error == .noSuchFileOrDirectory {
                // A kernel built without NUMA has no node directory: devices then have no node.
                nodeDirectory = nil
            }
            do throws(Errno) {
                parameters = try Self.openPath(
                    from: rootFD, ["module", "memory_hotplug", "parameters"], flags: chotplug_O_PATH | O_DIRECTORY)
            } catch  where error == .noSuchFileOrDirectory {
                parameters = nil
            }
            do throws(Errno) {
                memoryMap = try Self.openPath(
                    from: rootFD, ["firmware", "memmap"], flags: chotplug_O_PATH | O_DIRECTORY)
            } catch  where error == .noSuchFileOrDirectory {
                memoryMap = nil
            }
        } catch {
            for fd in directories.values { fd.closeAfterUse() }
            nodeDirectory?.closeAfterUse()
            parameters?.closeAfterUse()
            if rootFD.rawValue >= 0 { rootFD.closeAfterUse() }
            throw SysfsError(path: "\(root)/devices/system", operation: "open", errno: error)
        }
        self.kindDirectories = directories
        self.nodeDirectory = nodeDirectory
        self.memoryHotplugParameters = parameters
        self.firmwareMemoryMap = memoryMap
        self.rootDirectory = rootFD
        let probe = chotplug_openat_beneath(directories[.cpu]!.rawValue, ".", chotplug_O_PATH | O_DIRECTORY)
        if probe >= 0 { Glibc.close(probe) }
        self.resolvesBeneath = probe >= 0
    }

    deinit {
        for fd in kindDirectories.values { fd.closeAfterUse() }
        nodeDirectory?.closeAfterUse()
        memoryHotplugParameters?.closeAfterUse()
        firmwareMemoryMap?.closeAfterUse()
        rootDirectory.closeAfterUse()
    }

    /// The devices of one kind present now, in no particular order.
    public func devices(_ kind: DeviceKind) throws(SysfsError) -> [DeviceID] {
        try entries(in: kindDirectories[kind]!, path: "\(root)/devices/system/\(kind.directoryName)")
            .compactMap { DeviceID(name: $0) }.filter { $0.kind == kind }
    }

    /// Reads a device attribute such as `online`, `state` or `valid_zones`, without its trailing newline.
    public func read(_ device: DeviceID, _ attribute: String) throws(SysfsError) -> String {
        do throws(Errno) {
            let fd = try openAttribute(device, attribute, flags: O_RDONLY)
            defer { fd.closeAfterUse() }
            return try Self.readAll(fd)
        } catch {
            throw SysfsError(path: "\(root)\(device.devpath)/\(attribute)", operation: "read", errno: error)
        }
    }

    /// Writes `value` to a device attribute. The kernel's answer comes back as the thrown `Errno`.
    /// An interruptible write returns EINTR when a signal arrives (that is how a memory offline
    /// that takes too long is stopped); otherwise EINTR is retried.
    public func write(
        _ device: DeviceID, _ attribute: String, _ value: String, interruptible: Bool
    )
        throws(SysfsError)
    {
        do throws(Errno) {
            let fd = try openAttribute(device, attribute, flags: O_WRONLY | O_TRUNC)
            defer { fd.closeAfterUse() }
            try Self.store(value, in: fd, interruptible: interruptible)
        } catch {
            throw SysfsError(path: "\(root)\(device.devpath)/\(attribute)", operation: "write", errno: error)
        }
    }

    /// Whether the entry can be reached: any error, ENOENT or another, means it cannot.
    public func has(_ device: DeviceID, _ name: String) -> Bool {
        do throws(Errno) {
            try openAttribute(device, name, flags: chotplug_O_PATH).closeAfterUse()
            return true
        } catch {
            return false
        }
    }

    /// Opens `devices/system/KIND/DEVICE/ATTRIBUTE` without following any link on the way.
    private func openAttribute(_ device: DeviceID, _ attribute: String, flags: Int32) throws(Errno) -> FileDescriptor {
        let kindDirectory = kindDirectories[device.kind]!
        guard resolvesBeneath else {
            let directory = try Self.openAt(kindDirectory, device.name, flags: chotplug_O_PATH | O_DIRECTORY)
            defer { directory.closeAfterUse() }
            return try Self.openAt(directory, attribute, flags: flags)
        }
        let fd = try Self.retryingOnInterrupt { () throws(Errno) in
            try Self.valueOrErrno(chotplug_openat_beneath(kindDirectory.rawValue, "\(device.name)/\(attribute)", flags))
        }
        return FileDescriptor(rawValue: Int32(fd))
    }

    /// The target of a symbolic link inside the device's directory (e.g. `firmware_node`), or nil when absent.
    public func link(_ device: DeviceID, _ name: String) throws(SysfsError) -> String? {
        do throws(SysfsError) {
            return try withDeviceDirectory(device, attribute: name, operation: "readlink") {
                directory throws(Errno) in
                var buffer = [CChar](repeating: 0, count: 4096)
                let count = try Self.valueOrErrno(readlinkat(directory.rawValue, name, &buffer, buffer.count - 1))
                return String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            }
        } catch  where error.errno == .noSuchFileOrDirectory {
            return nil
        }
    }

    /// The names in the device's directory (attributes and links such as `node0`).
    public func entries(_ device: DeviceID) throws(SysfsError) -> [String] {
        let directory: FileDescriptor
        do throws(Errno) {
            directory = try Self.openAt(
                kindDirectories[device.kind]!, device.name, flags: chotplug_O_PATH | O_DIRECTORY)
        } catch {
            throw SysfsError(path: "\(root)\(device.devpath)", operation: "open", errno: error)
        }
        defer { directory.closeAfterUse() }
        return try entries(in: directory, path: "\(root)\(device.devpath)")
    }

    public func nodeMembership() throws(SysfsError) -> [DeviceID: Int] {
        guard let nodeDirectory else { return [:] }
        var membership: [DeviceID: Int] = [:]
        let path = "\(root)/devices/system/node"
        for name in try entries(in: nodeDirectory, path: path) where name.hasPrefix("node") {
            guard let node = Int(name.dropFirst(4)), node >= 0 else { continue }
            let directory: FileDescriptor
            do throws(Errno) {
                directory = try Self.openAt(nodeDirectory, name, flags: chotplug_O_PATH | O_DIRECTORY)
            } catch {
                throw SysfsError(path: "\(path)/\(name)", operation: "open", errno: error)
            }
            defer { directory.closeAfterUse() }
            for member in try entries(in: directory, path: "\(path)/\(name)") {
                if let id = DeviceID(name: member) { membership[id] = node }
            }
        }
        return membership
    }

    /// Each entry of the map is read once: the kernel names them by a counter it never reuses
    /// (drivers/firmware/memmap.c, `map_entries_nr`), also when a removed range comes back, so a
    /// name's contents never change. A DIMM's add then costs a listing and its own entry, not a
    /// read of every entry, and virtio-mem's block-at-a-time onlining one listing per block.
    public func firmwareRAM() throws(SysfsError) -> [ClosedRange<Int>]? {
        guard let firmwareMemoryMap else { return nil }
        let path = "\(root)/firmware/memmap"
        let names = Set(try entries(in: firmwareMemoryMap, path: path))
        var known = memoryMapEntries.withLock { $0 }
        known = known.filter { names.contains($0.key) }
        for name in names where !known.keys.contains(name) {
            do throws(Errno) {
                known[name] = .some(try Self.systemRAMRange(firmwareMemoryMap, name))
            } catch  where error == .noSuchFileOrDirectory {
                continue  // Removed since the listing: no longer in the map.
            } catch {
                throw SysfsError(path: "\(path)/\(name)", operation: "read", errno: error)
            }
        }
        memoryMapEntries.withLock { $0 = known }
        return known.values.compactMap { $0 }.sorted { $0.lowerBound < $1.lowerBound }
    }

    /// One entry of the firmware's memory map: its range if it is "System RAM", else nil.
    private static func systemRAMRange(_ map: FileDescriptor, _ name: String) throws(Errno) -> ClosedRange<Int>? {
        let entry = try openAt(map, name, flags: chotplug_O_PATH | O_DIRECTORY)
        defer { entry.closeAfterUse() }
        guard try readFile(at: entry, "type") == "System RAM" else { return nil }
        let bounds = try ["start", "end"].map { field throws(Errno) in
            let text = try readFile(at: entry, field)
            guard text.hasPrefix("0x"), let value = Int(text.dropFirst(2), radix: 16) else {
                throw Errno.invalidArgument
            }
            return value
        }
        return bounds[0] <= bounds[1] ? bounds[0]...bounds[1] : nil
    }

    /// The address ranges of the dax devices (`bus/dax/devices/daxX.Y`: `resource`, `size`), as
    /// libdaxctl finds which memory blocks are a device's. Each entry there is a link into
    /// `devices/`: its target is read, not followed, and opened from the root one component at a
    /// time without following links.
    public func daxRAM() throws(SysfsError) -> [ClosedRange<Int>] {
        let path = "\(root)/bus/dax/devices"
        let list: FileDescriptor
        do throws(Errno) {
            list = try Self.openPath(
                from: rootDirectory, ["bus", "dax", "devices"], flags: chotplug_O_PATH | O_DIRECTORY)
        } catch  where error == .noSuchFileOrDirectory {
            return []  // No dax driver loaded: no dax memory.
        } catch {
            throw SysfsError(path: path, operation: "open", errno: error)
        }
        defer { list.closeAfterUse() }
        var ranges: [ClosedRange<Int>] = []
        for name in try entries(in: list, path: path) where name.hasPrefix("dax") {
            do throws(Errno) {
                var buffer = [CChar](repeating: 0, count: 4096)
                let count = try Self.valueOrErrno(readlinkat(list.rawValue, name, &buffer, buffer.count - 1))
                let target = String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
                // Relative to bus/dax/devices; resolved by hand, and only to somewhere below devices/.
                var components = ["bus", "dax", "devices"]
                for component in target.split(separator: "/") {
                    if component == ".." {
                        guard components.popLast() != nil else { throw Errno.invalidArgument }
                    } else if component != "." {
                        components.append(String(component))
                    }
                }
                guard components.first == "devices", components.count > 1 else { throw Errno.invalidArgument }
                let device = try Self.openPath(from: rootDirectory, components, flags: chotplug_O_PATH | O_DIRECTORY)
                defer { device.closeAfterUse() }
                let start = try Self.readFile(at: device, "resource")
                guard start.hasPrefix("0x"), let base = Int(start.dropFirst(2), radix: 16),
                    let size = Int(try Self.readFile(at: device, "size")), size > 0
                else { throw Errno.invalidArgument }
                ranges.append(base...(base + size - 1))
            } catch {
                throw SysfsError(path: "\(path)/\(name)", operation: "read", errno: error)
            }
        }
        return ranges
    }

    /// Reads an attribute of the subsystem's directory, e.g. `memory/block_size_bytes` or `cpu/smt/control`.
    public func read(_ kind: DeviceKind, path relative: String) throws(SysfsError) -> String {
        let path = "\(root)/devices/system/\(kind.directoryName)/\(relative)"
        let components = relative.split(separator: "/").map(String.init)
        do throws(Errno) {
            guard !components.isEmpty, !components.contains("..") else { throw Errno.invalidArgument }
            let directory = try Self.openPath(
                from: kindDirectories[kind]!, Array(components.dropLast()), flags: chotplug_O_PATH | O_DIRECTORY)
            defer { directory.closeAfterUse() }
            return try Self.readFile(at: directory, components.last!)
        } catch {
            throw SysfsError(path: path, operation: "read", errno: error)
        }
    }

    // MARK: - Descriptor plumbing

    private func withDeviceDirectory<T>(
        _ device: DeviceID, attribute: String, operation: String,
        _ body: (FileDescriptor) throws(Errno) -> T
    ) throws(SysfsError) -> T {
        do throws(Errno) {
            let directory = try Self.openAt(
                kindDirectories[device.kind]!, device.name, flags: chotplug_O_PATH | O_DIRECTORY)
            defer { directory.closeAfterUse() }
            return try body(directory)
        } catch {
            throw SysfsError(path: "\(root)\(device.devpath)/\(attribute)", operation: operation, errno: error)
        }
    }

    private func entries(in directory: FileDescriptor, path: String) throws(SysfsError) -> [String] {
        // fdopendir takes ownership of the descriptor it is given, so give it a fresh one.
        let fd = openat(directory.rawValue, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0, let stream = fdopendir(fd) else {
            let error = Errno(rawValue: errno)
            if fd >= 0 { Glibc.close(fd) }
            throw SysfsError(path: path, operation: "opendir", errno: error)
        }
        defer { closedir(stream) }
        var names: [String] = []
        while let entry = readdir(stream) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { bytes in
                String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    static func openAt(_ directory: FileDescriptor, _ name: String, flags: Int32) throws(Errno) -> FileDescriptor {
        let fd = try retryingOnInterrupt { () throws(Errno) in
            try valueOrErrno(openat(directory.rawValue, name, flags | O_NOFOLLOW | O_CLOEXEC))
        }
        return FileDescriptor(rawValue: Int32(fd))
    }

    static func openPath(
        from start: FileDescriptor, _ components: [String], flags: Int32
    ) throws(Errno)
        -> FileDescriptor
    {
        var current = try openAt(start, ".", flags: chotplug_O_PATH | O_DIRECTORY)
        for component in components {
            let next: FileDescriptor
            do throws(Errno) {
                next = try openAt(current, component, flags: flags)
            } catch {
                current.closeAfterUse()
                throw error
            }
            current.closeAfterUse()
            current = next
        }
        return current
    }

    /// One write() call: sysfs takes an attribute value in a single store.
    static func store(_ value: String, in fd: FileDescriptor, interruptible: Bool = false) throws(Errno) {
        let written = try value.utf8CString.withUnsafeBytes { bytes in
            Result { () throws(Errno) in
                let once = { () throws(Errno) in
                    try Self.valueOrErrno(Glibc.write(fd.rawValue, bytes.baseAddress, bytes.count - 1))
                }
                return interruptible ? try once() : try Self.retryingOnInterrupt(once)
            }
        }.get()
        if written != value.utf8.count { throw Errno.ioError }
    }

    static func readFile(at directory: FileDescriptor, _ name: String) throws(Errno) -> String {
        let fd = try openAt(directory, name, flags: O_RDONLY)
        defer { fd.closeAfterUse() }
        return try readAll(fd)
    }

    static func readAll(_ fd: FileDescriptor) throws(Errno) -> String {
        // Sysfs attributes are at most a page long and are read in one call.
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = try buffer.withUnsafeMutableBytes { bytes in
            Result { () throws(Errno) in
                try retryingOnInterrupt { () throws(Errno) in
                    try valueOrErrno(Glibc.read(fd.rawValue, bytes.baseAddress, bytes.count))
                }
            }
        }.get()
        return String(decoding: buffer[..<count], as: UTF8.self).trimmingWhitespace().description
    }

    static func valueOrErrno<I: FixedWidthInteger>(_ result: I) throws(Errno) -> Int {
        if result < 0 { throw Errno(rawValue: errno) }
        return Int(result)
    }

    /// EINTR is retried here, in one place, as swift-system does.
    static func retryingOnInterrupt<T>(_ body: () throws(Errno) -> T) throws(Errno) -> T {
        while true {
            do throws(Errno) {
                return try body()
            } catch  where error == .interrupted {
                continue
            }
        }
    }
}

/// A failed sysfs operation: the path, what was attempted, and the kernel's errno.
public struct SysfsError: Error, Equatable, CustomStringConvertible {
    public let path: String
    public let operation: String
    public let errno: Errno

    public init(path: String, operation: String, errno: Errno) {
        self.path = path
        self.operation = operation
        self.errno = errno
    }

    public var description: String { "\(operation) \(path): \(errno) (errno \(errno.rawValue))" }
}

extension FileDescriptor {
    /// Closes a descriptor that was only read from or used as the base of `openat`. close(2) can
    /// then fail only with EBADF, a bug that would have shown earlier, or EINTR, after which Linux
    /// has closed it anyway: there is nothing to do about either.
    func closeAfterUse() {
        _ = Glibc.close(rawValue)
    }
}
