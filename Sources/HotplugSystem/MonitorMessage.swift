import HotplugCore

/// What the monitor thread hands to the daemon. Plain values only: libudev objects never leave the thread.
public enum MonitorMessage: Sendable, Equatable {
    /// The monitor is listening. `receiveBufferBytes` is what the kernel granted (it counts double).
    case ready(source: MonitorSource, receiveBufferBytes: Int)
    /// Events received in one burst, oldest first.
    case events([RawUevent])
    /// The kernel dropped events (ENOBUFS): the daemon must rescan sysfs.
    case eventsLost
    /// A datagram was refused before parsing (forged, truncated, malformed), and why.
    case refused(String)
    /// The monitor could not start or cannot go on.
    case failed(String)
}
