import HotplugCore

/// The sysfs operations the daemon is built on. `Sysfs` is the real thing; tests wrap it to
/// inject the errors a kernel can return, which a tree of plain files cannot produce.
public protocol SysfsAccess: Sendable {
    /// The mount point, for messages.
    var root: String { get }
    /// The devices of one kind present now, in no particular order.
    func devices(_ kind: DeviceKind) throws(SysfsError) -> [DeviceID]
    /// A device attribute without its trailing newline.
    func read(_ device: DeviceID, _ attribute: String) throws(SysfsError) -> String
    /// One write of `value` to a device attribute; the kernel's refusal is the thrown errno. An
    /// interruptible write gives up with EINTR when a signal arrives instead of retrying.
    func write(_ device: DeviceID, _ attribute: String, _ value: String, interruptible: Bool) throws(SysfsError)
    /// The target of a link in the device's directory, or nil when there is none.
    func link(_ device: DeviceID, _ name: String) throws(SysfsError) -> String?
    /// The names in the device's directory.
    func entries(_ device: DeviceID) throws(SysfsError) -> [String]
    /// Whether the device's directory has an entry of that name (a link is not followed).
    func has(_ device: DeviceID, _ name: String) -> Bool
    /// An attribute of the subsystem directory, by relative path (`block_size_bytes`, `smt/control`).
    func read(_ kind: DeviceKind, path: String) throws(SysfsError) -> String
    /// Every CPU and memory block linked under `devices/system/node/nodeN`, with its node: one
    /// directory listing per node instead of one per device. Empty without NUMA support.
    func nodeMembership() throws(SysfsError) -> [DeviceID: Int]
    /// The "System RAM" ranges of `/sys/firmware/memmap` (inclusive byte addresses); nil on
    /// kernels without it.
    func firmwareRAM() throws(SysfsError) -> [ClosedRange<Int>]?
    /// The address ranges of the dax devices; empty when there are none.
    func daxRAM() throws(SysfsError) -> [ClosedRange<Int>]
}

extension SysfsAccess {
    /// A write that retries EINTR.
    public func write(_ device: DeviceID, _ attribute: String, _ value: String) throws(SysfsError) {
        try write(device, attribute, value, interruptible: false)
    }
}
