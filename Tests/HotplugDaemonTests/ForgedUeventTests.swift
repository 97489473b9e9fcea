import Glibc
import HotplugCore
import HotplugDaemon
import HotplugFixtures
import HotplugSystem
import Testing

/// Forged and malformed messages sent over a real NETLINK_KOBJECT_UEVENT socket on this machine,
/// to the groups the daemon listens to, as root (the only sender the kernel lets in). None may
/// reach a sysfs attribute, and each is logged with its reason.
@Suite(.enabled(if: getuid() == 0, "needs root to send to the uevent netlink groups"), .serialized)
struct ForgedUeventTests {
    @Test func forgedUdevMessagesReachNoAttribute() async throws {
        let tree = try FakeSysfsTree()
        try tree.addCPU(0, online: nil)
        try tree.addMemory(0, online: true, zones: "Normal")
        let log = LogCapture()
        var options = Daemon.Options(config: Config())
        options.sysfsRoot = tree.root
        options.source = .udev
        options.runtimeDirectory = nil
        options.intentStore = nil
        options.conflicts = nil
        let daemon = Daemon(options: options, logger: log.logger())
        let task = Task { try await daemon.run() }
        defer { task.cancel() }
        // Generous: under ThreadSanitizer the daemon starts many times slower.
        try await RealKernel.until(timeout: .seconds(60)) { log.contains("memory devices present") }
        // Hot-added after the start and offline: an `add` that got through would online them.
        try tree.addCPU(4, online: false)
        try tree.addCPU(5, online: false)
        try tree.addMemory(12, dimm: "PNP0C80:00")

        let add = ["ACTION": "add", "DEVPATH": "/devices/system/cpu/cpu4", "SUBSYSTEM": "cpu", "SEQNUM": "1004"]
        let rejected: [(String, [UInt8])] = [
            ("devpath", UeventMessages.udev(add.merging(["DEVPATH": "/devices/system/cpu/../cpu/cpu4"]) { $1 })),
            (
                "devpath",
                UeventMessages.udev(add.merging(["DEVPATH": "/devices/virtual/net/../../system/cpu/cpu4"]) { $1 })
            ),
            ("does not match devpath", UeventMessages.udev(add.merging(["SUBSYSTEM": "memory"]) { $1 })),
            (
                "devpath",
                UeventMessages.udev(
                    [
                        "ACTION": "add", "DEVPATH": "/devices/system/memory/memory99999999999999999999",
                        "SUBSYSTEM": "memory",
                        "SEQNUM": "1005",
                    ])
            ),
            ("is not a decimal number", UeventMessages.udev(add.merging(["SEQNUM": "many"]) { $1 })),
        ]
        var wrongMagic = UeventMessages.udev(add)
        wrongMagic[8] ^= 0xff
        var beyondEnd = UeventMessages.udev(add)
        beyondEnd[16] = 0xf0
        var unterminated = UeventMessages.udev(add)
        unterminated.removeLast()
        unterminated[20] -= 1  // properties_len still matches what was sent
        let refused: [(String, [UInt8])] = [
            ("bad udev header: wrong magic", wrongMagic),
            ("bad udev header: properties at 240", beyondEnd),
            ("not NUL-terminated", unterminated),
            (
                "longer than any uevent",
                UeventMessages.udev(add.merging(["JUNK": String(repeating: "x", count: 9000)]) { $1 })
            ),
            ("bad udev header: no libudev prefix", UeventMessages.kernel("add", add)),
            ("malformed property", UeventMessages.udev(add, extra: "AC\u{1}TION=add")),
            (
                "longer than the kernel's uevent buffer",
                UeventMessages.udev(add.merging(["JUNK": String(repeating: "x", count: 3000)]) { $1 })
            ),
            ("ACTION given again", UeventMessages.udev(add, extra: "ACTION=remove")),
        ]
        // Passes the socket filter, which compares only the subsystem's hash in the header, but
        // is about another subsystem: dropped without a word, as libudev's own filter did.
        var otherSubsystem = UeventMessages.udev(add.merging(["SUBSYSTEM": "block"]) { $1 })
        otherSubsystem.replaceSubrange(24..<28, with: UeventMessages.bigEndian(UeventMessages.murmur2("cpu")))
        let forger = try Forger()
        for (_, message) in rejected + refused { try forger.send(message, group: UeventDatagram.udevGroup) }
        try forger.send(otherSubsystem, group: UeventDatagram.udevGroup)
        // Sent last on the same socket, so it is read last: once it has acted, all the others were read.
        try forger.send(
            UeventMessages.udev(add.merging(["DEVPATH": "/devices/system/cpu/cpu5", "SEQNUM": "1010"]) { $1 }),
            group: UeventDatagram.udevGroup)
        try await RealKernel.until(timeout: .seconds(60)) { tree.state("cpu5") == "1" }

        #expect(tree.state("cpu4") == "0")
        #expect(tree.state("memory12") == "offline")
        let rejections = log.all.filter { $0.contains("rejected uevent") }
        #expect(rejections.count == rejected.count, "\(rejections)")
        for ((reason, _), line) in zip(rejected, rejections) { #expect(line.contains(reason), "\(line)") }
        let refusals = log.all.filter { $0.contains("refused uevent datagram") }
        #expect(refusals.count == refused.count, "\(refusals)")
        for ((reason, _), line) in zip(refused, refusals) { #expect(line.contains(reason), "\(line)") }
        task.cancel()
        try await task.value
    }

    /// The kernel sends from netlink port 0; a process that sends to the kernel group cannot.
    @Test func kernelGroupMessagesFromAProcessAreRefused() async throws {
        let real = try #require(RealKernel.last(.cpu))
        let inbox = Inbox()
        let monitor = try UdevMonitor(options: .init(source: .kernel, receiveBufferBytes: 1 << 20)) { inbox.put($0) }
        defer { monitor.stop() }
        try await inbox.wait { if case .ready = $0 { true } else { false } }

        let forged = ["ACTION": "add", "DEVPATH": "/devices/system/cpu/cpu4095", "SUBSYSTEM": "cpu", "SEQNUM": "7"]
        let forger = try Forger()
        try forger.send(UeventMessages.kernel("add", forged), group: UeventDatagram.kernelGroup)
        try forger.send(UeventMessages.udev(forged), group: UeventDatagram.kernelGroup)
        // A real uevent after them: when it has arrived, so would they have.
        let sent = try RealKernel.seqnum()
        try RealKernel.trigger("change", real)
        try await inbox.waitForEvent(of: real, after: sent)
        #expect(!inbox.events.contains { $0.devpath == forged["DEVPATH"] })
        let refusals = inbox.refusals
        #expect(refusals.count == 2, "\(refusals)")
        #expect(refusals.allSatisfy { $0.hasPrefix("kernel-group message sent by a process") }, "\(refusals)")
    }

    /// Kernel-group messages pass libudev's socket filter whatever their subsystem: those about
    /// other subsystems are dropped, neither handed on nor refused. (Only the kernel can send
    /// them, so a real one is made: a NUMA node's `change`, which changes nothing.)
    @Test(.enabled(if: RealKernel.canTrigger, "needs a writable /sys"))
    func kernelMessagesOfOtherSubsystemsAreDroppedSilently() async throws {
        let cpu = try #require(RealKernel.last(.cpu))
        let node = "/sys/devices/system/node/node0/uevent"
        try #require(access(node, W_OK) == 0, "no NUMA node to send a uevent from")
        let inbox = Inbox()
        let monitor = try UdevMonitor(options: .init(source: .kernel, receiveBufferBytes: 1 << 20)) { inbox.put($0) }
        defer { monitor.stop() }
        try await inbox.wait { if case .ready = $0 { true } else { false } }

        try RealKernel.trigger("change", file: node)
        // A real uevent after it: when it has arrived, so would the node's have.
        let sent = try RealKernel.seqnum()
        try RealKernel.trigger("change", cpu)
        try await inbox.waitForEvent(of: cpu, after: sent)
        #expect(inbox.events.allSatisfy { $0.subsystem == "cpu" || $0.subsystem == "memory" }, "\(inbox.events)")
        #expect(inbox.refusals.isEmpty, "\(inbox.refusals)")
    }
}

/// Sends raw datagrams to the uevent netlink groups, as udevd and the kernel would, or worse.
struct Forger: ~Copyable {
    let fd: Int32

    init() throws {
        fd = socket(
            AF_NETLINK, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 15 /* NETLINK_KOBJECT_UEVENT */)
        guard fd >= 0 else { throw Failure(errno: errno) }
        let address = Self.address(groups: 0)
        let bound = address.withUnsafeBytes {
            bind(fd, $0.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t($0.count))
        }
        guard bound == 0 else { throw Failure(errno: errno) }
    }

    deinit { close(fd) }

    func send(_ message: [UInt8], group: UInt32) throws {
        let address = Self.address(groups: group)
        let sent = message.withUnsafeBytes { bytes in
            address.withUnsafeBytes {
                sendto(
                    fd, bytes.baseAddress, bytes.count, 0, $0.baseAddress!.assumingMemoryBound(to: sockaddr.self),
                    socklen_t($0.count))
            }
        }
        guard sent == message.count else { throw Failure(errno: errno) }
    }

    struct Failure: Error { let errno: Int32 }

    /// `struct sockaddr_nl` (linux/netlink.h, which Glibc does not import): family, padding,
    /// port 0 (the kernel picks one), groups, in host order.
    static func address(groups: UInt32) -> [UInt8] {
        UeventMessages.littleEndian(UInt32(AF_NETLINK)) + UeventMessages.littleEndian(0)
            + UeventMessages.littleEndian(groups)
    }
}
