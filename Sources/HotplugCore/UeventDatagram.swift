/// One netlink datagram as the monitor socket received it: the bytes, who sent it, and whether
/// it was cut short.
///
/// The monitor receives each datagram once, into the buffer that is checked here, and takes the
/// event's fields from those same bytes (`fields(source:)`), so that what is used is what was
/// checked. The rules are hotplugd's own and every refusal has its reason: kernel messages from
/// the kernel only, udev messages from root only, whole and well formed.
public struct UeventDatagram: Sendable, Equatable {
    /// Who sent it: the sender's netlink port (0 is the kernel), the multicast group it was sent
    /// to (1 kernel, 2 udev, 0 unicast), and the uid from its SCM_CREDENTIALS, if any came.
    public struct Sender: Sendable, Equatable {
        public var port: UInt32
        public var groups: UInt32
        public var uid: UInt32?
        public init(port: UInt32, groups: UInt32, uid: UInt32?) {
            self.port = port
            self.groups = groups
            self.uid = uid
        }
    }

    /// The bytes received, indexed from 0 (a slice of the monitor's buffer: no copy).
    public var bytes: ArraySlice<UInt8>
    /// The datagram's full length, which is more than `bytes.count` when it was truncated.
    public var length: Int
    public var sender: Sender

    public init(bytes: ArraySlice<UInt8>, length: Int, sender: Sender) {
        precondition(bytes.startIndex == 0, "datagram bytes are indexed from 0")
        self.bytes = bytes
        self.length = length
        self.sender = sender
    }

    /// The receive buffer of libudev's own monitors: they drop anything longer as truncated, so
    /// no sender can rely on a longer message.
    public static let maxLength = 8192
    /// The kernel's uevent buffer (UEVENT_BUFFER_SIZE), which holds all of a uevent's properties:
    /// no single one can be as long.
    public static let maxPropertyLength = 2048
    /// The netlink multicast groups of NETLINK_KOBJECT_UEVENT.
    public static let kernelGroup: UInt32 = 1
    public static let udevGroup: UInt32 = 2
    /// The header libudev puts before a udev message's properties (`monitor_netlink_header`).
    static let udevPrefix: [UInt8] = Array("libudev".utf8) + [0]
    static let udevMagic: UInt32 = 0xfeed_cafe
    static let udevHeaderSize = 40
}

/// Why a datagram was refused before any of its fields was used.
public enum UeventDatagramError: Error, Equatable, CustomStringConvertible {
    case tooShort(Int)
    case oversized(Int)
    case unicast(port: UInt32)
    case wrongGroup(UInt32)
    case kernelMessageFromProcess(port: UInt32)
    case noCredentials
    case notRoot(uid: UInt32)
    case badUdevHeader(String)
    case badKernelHeader
    case unterminated
    case badProperty(offset: Int)
    case oversizedProperty(offset: Int)
    case headerMismatch(key: String, header: String, property: String)
    case repeatedProperty(key: String, offset: Int)

    public var description: String {
        switch self {
        case .tooShort(let length): "\(length) bytes is too short for a uevent"
        case .oversized(let length): "\(length) bytes is longer than any uevent (\(UeventDatagram.maxLength))"
        case .unicast(let port): "unicast message from netlink port \(port)"
        case .wrongGroup(let group): "sent to netlink group \(group), not the one listened to"
        case .kernelMessageFromProcess(let port): "kernel-group message sent by a process (netlink port \(port))"
        case .noCredentials: "no sender credentials"
        case .notRoot(let uid): "sent by uid \(uid), not root"
        case .badUdevHeader(let what): "bad udev header: \(what)"
        case .badKernelHeader: "no ACTION@DEVPATH header"
        case .unterminated: "properties not NUL-terminated"
        case .badProperty(let offset): "malformed property at byte \(offset)"
        case .oversizedProperty(let offset):
            "property at byte \(offset) is longer than the kernel's uevent buffer (\(UeventDatagram.maxPropertyLength))"
        case .headerMismatch(let key, let header, let property):
            "\(key) property \(property.debugDescription) contradicts the header's \(header.debugDescription)"
        case .repeatedProperty(let key, let offset): "\(key) given again at byte \(offset) with another value"
        }
    }
}

extension UeventDatagram {
    /// Checks a datagram received from the monitor of `source` (`.udev` or `.kernel`).
    ///
    /// Kernel messages: group 1, netlink port 0 (only the kernel sends from port 0), `ACTION@DEVPATH`
    /// then NUL-separated properties. udev messages: group 2, libudev's header with its magic,
    /// the properties exactly where the header says. Both: sent by uid 0, at most `maxLength`
    /// bytes, every property `KEY=VALUE` with a key of printable ASCII (udev rules may set any
    /// such key) and shorter than the kernel's uevent buffer, and the last one NUL-terminated.
    /// What the fields say is `UeventDecoder`'s to check.
    public func check(source: MonitorSource) throws(UeventDatagramError) {
        _ = try checkedProperties(source: source)
    }

    /// `check(source:)`, and where the properties are.
    func checkedProperties(source: MonitorSource) throws(UeventDatagramError) -> Range<Int> {
        guard length <= Self.maxLength, bytes.count == length else { throw .oversized(length) }
        guard length >= 32 else { throw .tooShort(length) }
        let expected = source == .udev ? Self.udevGroup : Self.kernelGroup
        guard sender.groups != 0 else { throw .unicast(port: sender.port) }
        guard sender.groups == expected else { throw .wrongGroup(sender.groups) }
        if source != .udev, sender.port != 0 { throw .kernelMessageFromProcess(port: sender.port) }
        guard let uid = sender.uid else { throw .noCredentials }
        guard uid == 0 else { throw .notRoot(uid: uid) }

        let properties: Range<Int>
        if source == .udev {
            properties = try udevProperties()
        } else {
            guard let end = bytes.firstIndex(of: 0), Self.contains(bytes[..<end], "@/") else {
                throw .badKernelHeader
            }
            properties = (end + 1)..<length
        }
        try Self.checkProperties(bytes[properties], start: properties.lowerBound)
        return properties
    }

    private func udevProperties() throws(UeventDatagramError) -> Range<Int> {
        guard bytes.starts(with: Self.udevPrefix) else { throw .badUdevHeader("no libudev prefix") }
        guard bigEndian(at: 8) == Self.udevMagic else { throw .badUdevHeader("wrong magic") }
        let headerSize = Int(littleEndian(at: 12))
        let offset = Int(littleEndian(at: 16))
        let count = Int(littleEndian(at: 20))
        guard headerSize >= Self.udevHeaderSize, headerSize <= length else {
            throw .badUdevHeader("header size \(headerSize)")
        }
        guard offset >= headerSize, count > 0, offset <= length, count == length - offset else {
            throw .badUdevHeader("properties at \(offset) for \(count) bytes in \(length)")
        }
        return offset..<length
    }

    /// `KEY=VALUE\0` entries, nothing else.
    static func checkProperties(_ area: ArraySlice<UInt8>, start: Int) throws(UeventDatagramError) {
        guard area.last == 0 else { throw .unterminated }
        var position = area.startIndex
        while position < area.endIndex {
            let end = area[position...].firstIndex(of: 0)!
            guard let equals = area[position..<end].firstIndex(of: UInt8(ascii: "=")), equals > position,
                area[position..<equals].allSatisfy(isKeyByte)
            else { throw .badProperty(offset: position) }
            guard end - position < maxPropertyLength else { throw .oversizedProperty(offset: position) }
            position = end + 1
        }
    }

    private static func isKeyByte(_ byte: UInt8) -> Bool {
        byte > 0x20 && byte < 0x7f && byte != UInt8(ascii: "=")
    }

    private static func contains(_ haystack: ArraySlice<UInt8>, _ needle: String) -> Bool {
        let needle = Array(needle.utf8)
        guard haystack.count >= needle.count else { return false }
        return haystack.indices.dropLast(needle.count - 1).contains {
            haystack[$0..<($0 + needle.count)].elementsEqual(needle)
        }
    }

    private func bigEndian(at offset: Int) -> UInt32 {
        bytes[offset..<(offset + 4)].reduce(0) { $0 << 8 | UInt32($1) }
    }

    /// libudev writes the header's sizes in host order; hotplugd runs on little-endian machines
    /// (x86-64, arm64), as the kernel facts it relies on assume.
    private func littleEndian(at offset: Int) -> UInt32 {
        bytes[offset..<(offset + 4)].reversed().reduce(0) { $0 << 8 | UInt32($1) }
    }
}
