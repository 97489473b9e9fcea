import HotplugCore

/// What the monitor thread hands to the daemon. Plain values only: libudev objects never leave the thread.
public enum MonitorMessage: Sendable, Equatable {
    /// The monitor is listening. `receiveBufferBytes` is what the kernel granted (it counts double);
    /// `schedulingRefused` the errno when its thread could not be put behind the kernel's work
    /// (`ThreadScheduling`).
    case ready(source: MonitorSource, receiveBufferBytes: Int, schedulingRefused: Int32?)
    /// Events received in one burst, oldest first.
    case events([RawUevent])
    /// Events may have been lost (ENOBUFS: the socket overran; ENOMEM: the kernel was short of
    /// memory): the daemon must rescan sysfs.
    case eventsLost
    /// A datagram was refused before any of its fields was used (forged, truncated, malformed,
    /// copies of a field that disagree), and why.
    case refused(String)
    /// The monitor could not start or cannot go on; its thread has ended.
    case failed(String)
}
