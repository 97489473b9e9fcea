import HotplugCore
import HotplugFixtures
import Testing

/// The check every datagram passes before any of its fields is used.
@Suite struct UeventDatagramTests {
    static let add = [
        "ACTION": "add", "DEVPATH": "/devices/system/memory/memory40", "SUBSYSTEM": "memory", "SEQNUM": "3012",
    ]
    static let kernel = UeventDatagram.Sender(port: 0, groups: UeventDatagram.kernelGroup, uid: 0)
    static let udevd = UeventDatagram.Sender(port: 731, groups: UeventDatagram.udevGroup, uid: 0)

    func check(
        _ bytes: [UInt8], _ sender: UeventDatagram.Sender, source: MonitorSource, length: Int? = nil
    )
        throws(UeventDatagramError)
    {
        try UeventDatagram(bytes: bytes[...], length: length ?? bytes.count, sender: sender).check(source: source)
    }

    @Test func wellFormedMessagesFromTheirSendersPass() throws {
        try check(UeventMessages.kernel("add", Self.add), Self.kernel, source: .kernel)
        try check(UeventMessages.udev(Self.add), Self.udevd, source: .udev)
        // udev rules may set keys of any printable characters.
        try check(UeventMessages.udev(Self.add, extra: "my.rule-key=1"), Self.udevd, source: .udev)
    }

    @Test func sendersOtherThanTheKernelAndRootAreRefused() {
        let kernelMessage = UeventMessages.kernel("add", Self.add)
        let udevMessage = UeventMessages.udev(Self.add)
        #expect(throws: UeventDatagramError.kernelMessageFromProcess(port: 4242)) {
            try check(kernelMessage, .init(port: 4242, groups: 1, uid: 0), source: .kernel)
        }
        #expect(throws: UeventDatagramError.unicast(port: 0)) {
            try check(kernelMessage, .init(port: 0, groups: 0, uid: 0), source: .kernel)
        }
        #expect(throws: UeventDatagramError.wrongGroup(1)) { try check(udevMessage, Self.kernel, source: .udev) }
        #expect(throws: UeventDatagramError.noCredentials) {
            try check(udevMessage, .init(port: 731, groups: 2, uid: nil), source: .udev)
        }
        #expect(throws: UeventDatagramError.notRoot(uid: 1000)) {
            try check(udevMessage, .init(port: 731, groups: 2, uid: 1000), source: .udev)
        }
    }

    @Test func brokenMessagesAreRefusedWithTheirReason() {
        let udevMessage = UeventMessages.udev(Self.add)
        #expect(throws: UeventDatagramError.tooShort(10)) {
            try check(Array("add@/x\0A=\0".utf8), Self.kernel, source: .kernel)
        }
        #expect(throws: UeventDatagramError.oversized(9000)) {
            try check(Array(udevMessage.prefix(200)), Self.udevd, source: .udev, length: 9000)
        }
        #expect(throws: UeventDatagramError.badKernelHeader) {
            try check(Array("add /devices/system/memory/memory40\0ACTION=add\0".utf8), Self.kernel, source: .kernel)
        }
        #expect(throws: UeventDatagramError.badUdevHeader("no libudev prefix")) {
            try check(UeventMessages.kernel("add", Self.add), Self.udevd, source: .udev)
        }
        var magic = udevMessage
        magic[9] = 0
        #expect(throws: UeventDatagramError.badUdevHeader("wrong magic")) {
            try check(magic, Self.udevd, source: .udev)
        }
        var offset = udevMessage
        offset[16] = 8
        #expect(
            throws: UeventDatagramError.badUdevHeader(
                "properties at 8 for \(udevMessage.count - 40) bytes in \(udevMessage.count)")
        ) {
            try check(offset, Self.udevd, source: .udev)
        }
        var unterminated = UeventMessages.kernel("add", Self.add)
        unterminated.removeLast()
        #expect(throws: UeventDatagramError.unterminated) { try check(unterminated, Self.kernel, source: .kernel) }
        let header = Array("add@/devices/system/memory/memory40".utf8) + [0]
        #expect(throws: UeventDatagramError.badProperty(offset: header.count)) {
            try check(header + Array("=add\0ACTION=add\0SEQNUM=1\0".utf8), Self.kernel, source: .kernel)
        }
        #expect(throws: UeventDatagramError.badProperty(offset: header.count + 11)) {
            try check(header + Array("ACTION=add\0NOEQUALSIGN\0SEQNUM=1\0".utf8), Self.kernel, source: .kernel)
        }
        #expect(throws: UeventDatagramError.badProperty(offset: header.count)) {
            try check(header + Array("AC\u{7}ION=add\0SEQNUM=12345\0".utf8), Self.kernel, source: .kernel)
        }
        let long = Array("ACTION=add\0MODALIAS=".utf8) + Array(repeating: UInt8(ascii: "x"), count: 2040) + [0]
        #expect(throws: UeventDatagramError.oversizedProperty(offset: header.count + 11)) {
            try check(header + long, Self.kernel, source: .kernel)
        }
    }

    /// Every prefix of a valid message, as a truncated datagram would be, is refused or passes whole.
    @Test func everyTruncationIsRefused() {
        let message = UeventMessages.udev(Self.add)
        for count in 0..<message.count {
            #expect(throws: UeventDatagramError.self) {
                try check(Array(message.prefix(count)), Self.udevd, source: .udev)
            }
        }
    }
}
