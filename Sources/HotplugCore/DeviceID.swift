/// The two kinds of device whose offline/online ABI hotplugd drives.
public enum DeviceKind: String, Sendable, Hashable, CaseIterable, Codable {
    case cpu
    case memory

    /// The sysfs directory under `devices/system` that holds devices of this kind,
    /// and also the prefix of each device's name (`cpu4`, `memory32`).
    public var directoryName: String { rawValue }

    /// The attribute written to bring a device of this kind online.
    public var onlineAttribute: String {
        switch self {
        case .cpu: "online"
        case .memory: "state"
        }
    }
}

/// One CPU or memory block, named the way the kernel names it (`cpu4`, `memory32`).
///
/// A `DeviceID` is only ever made from a validated name, so the sysfs paths built from it
/// cannot contain anything but `cpu` or `memory` followed by decimal digits.
public struct DeviceID: Hashable, Sendable, Comparable, CustomStringConvertible {
    public let kind: DeviceKind
    public let index: Int

    /// The largest index accepted. Memory block numbers grow with physical addresses
    /// (128 MiB blocks: 8 per GiB); 2^24 blocks covers 2 PiB, far past any machine.
    public static let maxIndex = 1 << 24

    public init?(kind: DeviceKind, index: Int) {
        guard index >= 0, index <= Self.maxIndex else { return nil }
        self.kind = kind
        self.index = index
    }

    /// Parses a device name such as `cpu4` or `memory32`. Leading zeros, signs, spaces and
    /// anything after the digits are refused: the kernel never makes such names.
    public init?(name: some StringProtocol) {
        for kind in DeviceKind.allCases where name.hasPrefix(kind.directoryName) {
            let digits = name.dropFirst(kind.directoryName.count)
            guard let index = Self.parseIndex(digits) else { return nil }
            self.init(kind: kind, index: index)
            return
        }
        return nil
    }

    /// Parses a kernel devpath: exactly `/devices/system/cpu/cpuN` or `/devices/system/memory/memoryN`.
    /// Taken apart in place: a DIMM's burst decodes hundreds at once, and splitting each path
    /// into an array of parts took a quarter of the core's time receiving them.
    public init?(devpath: String) {
        let prefix = "/devices/system/"
        guard devpath.hasPrefix(prefix) else { return nil }
        let rest = devpath.utf8.dropFirst(prefix.utf8.count)
        guard let slash = rest.firstIndex(of: UInt8(ascii: "/")),
            let id = DeviceID(name: devpath[devpath.utf8.index(after: slash)...]),
            devpath[rest.startIndex..<slash] == id.kind.directoryName
        else { return nil }
        self = id
    }

    public var name: String { "\(kind.directoryName)\(index)" }
    public var devpath: String { "/devices/system/\(kind.directoryName)/\(name)" }
    public var description: String { name }

    public static func < (lhs: DeviceID, rhs: DeviceID) -> Bool {
        (lhs.kind.directoryName, lhs.index) < (rhs.kind.directoryName, rhs.index)
    }

    private static func parseIndex(_ digits: some StringProtocol) -> Int? {
        guard let first = digits.utf8.first, digits.utf8.count <= 8 else { return nil }
        guard digits.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else { return nil }
        if first == UInt8(ascii: "0") && digits.utf8.count > 1 { return nil }
        return Int(digits)
    }
}

extension DeviceID {
    /// Devices as runs, one list per kind, as log lines and the commands name them:
    /// `memory40-47,50`, `cpu2-3 memory32-35`.
    public static func runs(_ devices: some Sequence<DeviceID>) -> String {
        let all = Array(devices)
        return DeviceKind.allCases.compactMap { kind in
            let indices = all.filter { $0.kind == kind }.map { $0.index...$0.index }
            return indices.isEmpty ? nil : "\(kind.directoryName)\(CPUList(indices))"
        }.joined(separator: " ")
    }
}
