/// What an operator's `hotplugd offline` is about to do, checked before anything is written.
///
/// The kernel's offline/online ABI exists so that devices can be taken out safely before they
/// are removed; these are the cases where trying would fail or hurt, refused up front with the
/// reason, so that nothing is half done.
public enum OfflinePlan {
    /// A device as the check needs to see it.
    public struct Device: Sendable, Equatable {
        public var id: DeviceID
        public var online: Bool
        /// False for a CPU without an `online` attribute (usually cpu0): the kernel cannot offline it.
        public var hasOnlineAttribute: Bool
        /// For an online memory block: its zone (`Movable`, `Normal`, `DMA32`, or `none` when it spans zones).
        public var zone: String?

        public init(id: DeviceID, online: Bool, hasOnlineAttribute: Bool = true, zone: String? = nil) {
            self.id = id
            self.online = online
            self.hasOnlineAttribute = hasOnlineAttribute
            self.zone = zone
        }
    }

    public enum Refusal: Sendable, Equatable, CustomStringConvertible {
        case notPresent(DeviceID)
        case noOnlineAttribute(DeviceID)
        case lastOnlineCPU(DeviceID)
        case spansZones(DeviceID)
        case kernelZone(DeviceID, zone: String)

        public var description: String {
            switch self {
            case .notPresent(let id): "\(id): no such device"
            case .noOnlineAttribute(let id): "\(id): has no online attribute; the kernel cannot take it offline"
            case .lastOnlineCPU(let id): "\(id): it would leave no CPU online"
            case .spansZones(let id): "\(id): spans zones (valid_zones is none); the kernel refuses to offline it"
            case .kernelZone(let id, let zone):
                "\(id): in zone \(zone), whose pages are mostly unmovable; offlining usually fails (--force tries anyway)"
            }
        }
    }

    /// The devices to take offline, highest first (the order chmem and the kernel's own removal
    /// use), and every reason not to; only a plan without refusals is to be carried out.
    /// Devices already offline are left out.
    public static func offline(
        _ selected: [DeviceID], present: [DeviceID: Device], force: Bool = false
    ) -> (plan: [DeviceID], refusals: [Refusal]) {
        var refusals: [Refusal] = []
        var plan: [DeviceID] = []
        for id in Set(selected).sorted(by: >) {
            guard let device = present[id] else {
                refusals.append(.notPresent(id))
                continue
            }
            guard device.online else { continue }
            if !device.hasOnlineAttribute {
                refusals.append(.noOnlineAttribute(id))
            } else if device.zone == "none" {
                refusals.append(.spansZones(id))
            } else if let zone = device.zone, id.kind == .memory, zone != "Movable", !force {
                refusals.append(.kernelZone(id, zone: zone))
            } else {
                plan.append(id)
            }
        }
        let onlineCPUs = present.values.filter { $0.id.kind == .cpu && $0.online }.count
        if plan.filter({ $0.kind == .cpu }).count >= onlineCPUs, let last = plan.last(where: { $0.kind == .cpu }) {
            refusals.append(.lastOnlineCPU(last))
        }
        return (plan, refusals)
    }

    /// The value that puts an offlined device back as it was: its zone for memory.
    public static func restoreValue(for device: Device) -> String {
        guard device.id.kind == .memory else { return "1" }
        return device.zone == "Movable"
            ? MemoryOnlineType.onlineMovable.rawValue : MemoryOnlineType.onlineKernel.rawValue
    }
}
