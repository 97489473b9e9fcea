import Glibc
import HotplugCore
import HotplugSystem

import struct SystemPackage.Errno

/// Sysfs access over a `FakeSysfsTree` that answers writes the way the kernel does, and fails
/// them on demand: the fault injection a tree of plain files cannot do by itself.
///
/// Reads and the writes' file I/O go through the real `Sysfs`; on a successful write to a memory
/// block's `state` the block reads `online` afterwards and its `valid_zones` shows its zone, as
/// on the kernel. Writing `online*` to an online block fails with EINVAL, as on the kernel.
public final class FakeKernel: SysfsAccess {
    public let sysfs: Sysfs
    private let state = Locked(State())

    struct State {
        var faults: [DeviceID: [Errno?]] = [:]
        public var writes: [(DeviceID, String)] = []
        var operations: [String] = []
        public var oopses: [DeviceID] = []
        var delays: [DeviceID: Duration] = [:]
    }

    public init(tree: FakeSysfsTree) throws {
        sysfs = try Sysfs(root: tree.root)
    }

    public var root: String { sysfs.root }

    /// The next writes to `device` fail with these errors, one per attempt (nil: that one succeeds).
    public func inject(_ errors: [Errno?], into device: String) {
        state.withLock { $0.faults[DeviceID(name: device)!, default: []] += errors }
    }

    /// Every write that reached the fake kernel, in order, as `device=value`.
    public var writes: [String] { state.withLock { $0.writes.map { "\($0.0)=\($0.1)" } } }

    /// Every write and link read, in order, as `write device=value` and `link device/name`: the
    /// order in which the driver performs what the core asks.
    public var operations: [String] { state.withLock { $0.operations } }

    public func devices(_ kind: DeviceKind) throws(SysfsError) -> [DeviceID] { try sysfs.devices(kind) }
    /// Reads of `valid_zones` that would have oopsed Linux 6.1: an offline block not yet linked to its node.
    public var oopses: [String] { state.withLock { $0.oopses.map(\.name) } }

    public func read(_ device: DeviceID, _ attribute: String) throws(SysfsError) -> String {
        if attribute == "valid_zones", try sysfs.read(device, "state") == "offline",
            try !sysfs.entries(device).contains(where: { $0.hasPrefix("node") })
        {
            state.withLock { $0.oopses.append(device) }
        }
        return try sysfs.read(device, attribute)
    }
    public func link(_ device: DeviceID, _ name: String) throws(SysfsError) -> String? {
        state.withLock { $0.operations.append("link \(device)/\(name)") }
        return try sysfs.link(device, name)
    }
    public func entries(_ device: DeviceID) throws(SysfsError) -> [String] { try sysfs.entries(device) }
    public func has(_ device: DeviceID, _ name: String) -> Bool { sysfs.has(device, name) }
    public func read(_ kind: DeviceKind, path: String) throws(SysfsError) -> String { try sysfs.read(kind, path: path) }
    public func nodeMembership() throws(SysfsError) -> [DeviceID: Int] { try sysfs.nodeMembership() }
    public func firmwareRAM() throws(SysfsError) -> [ClosedRange<Int>]? { try sysfs.firmwareRAM() }
    public func daxRAM() throws(SysfsError) -> [ClosedRange<Int>] { try sysfs.daxRAM() }

    /// Writes to `device` take this long, as a memory offline migrating pages does; a signal ends
    /// the wait with EINTR when the write is interruptible.
    public func delay(_ device: String, by duration: Duration) {
        state.withLock { $0.delays[DeviceID(name: device)!] = duration }
    }

    public func write(_ device: DeviceID, _ attribute: String, _ value: String, interruptible: Bool) throws(SysfsError)
    {
        let (fault, delay): (Errno?, Duration?) = state.withLock { state in
            state.writes.append((device, value))
            state.operations.append("write \(device)=\(value)")
            return (
                state.faults[device]?.isEmpty == false ? state.faults[device]!.removeFirst() : nil,
                state.delays.removeValue(forKey: device)
            )
        }
        let path = "\(root)\(device.devpath)/\(attribute)"
        if let delay {
            var request = timespec(
                tv_sec: Int(delay.components.seconds), tv_nsec: Int(delay.components.attoseconds / 1_000_000_000))
            if nanosleep(&request, nil) != 0 && interruptible {
                throw SysfsError(path: path, operation: "write", errno: .interrupted)
            }
        }
        if let fault { throw SysfsError(path: path, operation: "write", errno: fault) }
        if device.kind == .cpu {
            return try sysfs.write(device, attribute, value)
        }
        if value == "offline" {
            try sysfs.write(device, "valid_zones", "Normal Movable")
            return try sysfs.write(device, "state", "offline")
        }
        if try sysfs.read(device, "state") == "online" {
            throw SysfsError(path: path, operation: "write", errno: .invalidArgument)
        }
        let zones = try sysfs.read(device, "valid_zones").split(separator: " ")
        let zone: Substring =
            switch value {
            case "online_movable": "Movable"
            case "online_kernel": zones.first { $0 != "Movable" } ?? "Normal"
            default: zones.first ?? "Normal"
            }
        try sysfs.write(device, "valid_zones", String(zone))
        try sysfs.write(device, "state", "online")
    }
}
