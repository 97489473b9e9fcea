/// What is written to a device's online attribute to bring it online: `1` for a CPU, and for a
/// memory block the zone choice the kernel accepts in `state`.
public enum OnlineValue: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    case cpu = "1"
    case online
    case onlineKernel = "online_kernel"
    case onlineMovable = "online_movable"

    /// The value an explicit memory online type writes; nil for `auto-movable`, which is a policy
    /// that picks `online_movable` or `online_kernel` per DIMM, not something the kernel accepts.
    public init?(_ type: MemoryOnlineType) {
        switch type {
        case .online: self = .online
        case .onlineKernel: self = .onlineKernel
        case .onlineMovable: self = .onlineMovable
        case .autoMovable: return nil
        }
    }

    /// The text written to sysfs.
    public var sysfsValue: String { rawValue }
    public var description: String { rawValue }
}

/// A memory zone as the kernel names it in `valid_zones` (`DMA`, `DMA32`, `Normal`, `Movable`,
/// `Device`, or `none` for an online block that spans zones).
///
/// A struct over the kernel's text rather than an enum: a kernel may name zones this daemon does
/// not know, and those must be shown as they are, not refused.
public struct Zone: RawRepresentable, Sendable, Hashable, Codable, CustomStringConvertible, ExpressibleByStringLiteral {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public init(stringLiteral name: String) { self.rawValue = name }
    public init(_ name: some StringProtocol) { self.rawValue = String(name) }

    public static let normal = Zone(rawValue: "Normal")
    public static let movable = Zone(rawValue: "Movable")

    /// Parses `valid_zones`: zone names separated by spaces.
    public static func list(_ text: some StringProtocol) -> [Zone] {
        text.split(separator: " ").map { Zone(rawValue: String($0)) }
    }

    public var description: String { rawValue }
}
