/// A uevent as it left the monitor thread: the four fields the decoder needs, as the checked
/// datagram carried them (`UeventDatagram.fields(source:)`), not yet trusted.
public struct RawUevent: Sendable, Equatable {
    public var action: String?
    public var devpath: String?
    public var subsystem: String?
    public var seqnum: String?
    /// When the monitor took it off the socket: a device's time to online counts from its `add`
    /// as received, not from when the core got round to it.
    public var receivedAt: ContinuousClock.Instant?

    public init(
        action: String?, devpath: String?, subsystem: String?, seqnum: String?,
        receivedAt: ContinuousClock.Instant? = nil
    ) {
        self.action = action
        self.devpath = devpath
        self.subsystem = subsystem
        self.seqnum = seqnum
        self.receivedAt = receivedAt
    }
}

/// The actions the driver core sends (include/linux/kobject.h, `kobject_actions`).
public enum UeventAction: String, Sendable, CaseIterable, Codable {
    case add, remove, change, move, online, offline, bind, unbind
}

/// A validated uevent about one CPU or memory block.
public struct Uevent: Sendable, Equatable, CustomStringConvertible {
    public let action: UeventAction
    public let device: DeviceID
    public let seqnum: UInt64
    /// See `RawUevent.receivedAt`.
    public let receivedAt: ContinuousClock.Instant?

    public init(action: UeventAction, device: DeviceID, seqnum: UInt64, receivedAt: ContinuousClock.Instant? = nil) {
        self.action = action
        self.device = device
        self.seqnum = seqnum
        self.receivedAt = receivedAt
    }

    public var description: String { "\(action.rawValue) \(device) seqnum=\(seqnum)" }
}
