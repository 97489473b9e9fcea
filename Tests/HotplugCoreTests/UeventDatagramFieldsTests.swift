import HotplugCore
import HotplugFixtures
import Testing

/// The four fields, as the monitor takes them from the bytes it checked.
@Suite struct UeventDatagramFieldsTests {
    static let add = UeventDatagramTests.add
    static let devpath = "/devices/system/memory/memory40"

    func fields(
        _ bytes: [UInt8], source: MonitorSource, sender: UeventDatagram.Sender? = nil
    )
        throws(UeventDatagramError) -> RawUevent
    {
        let sender = sender ?? (source == .udev ? UeventDatagramTests.udevd : UeventDatagramTests.kernel)
        return try UeventDatagram(bytes: bytes[...], length: bytes.count, sender: sender).fields(source: source)
    }

    @Test func kernelAndUdevMessagesGiveTheirFields() throws {
        let expected = RawUevent(action: "add", devpath: Self.devpath, subsystem: "memory", seqnum: "3012")
        #expect(try fields(UeventMessages.kernel("add", Self.add), source: .kernel) == expected)
        #expect(try fields(UeventMessages.udev(Self.add), source: .udev) == expected)
        #expect(try fields(UeventMessages.udev(Self.add, extra: "ID_PATH=x"), source: .udev) == expected)
    }

    /// The header's ACTION@DEVPATH and the properties' copies are two accounts of one event.
    @Test func aKernelHeaderAndPropertiesThatDisagreeAreRefused() {
        #expect(throws: UeventDatagramError.headerMismatch(key: "ACTION", header: "add", property: "remove")) {
            try fields(UeventMessages.kernel("add", Self.add.merging(["ACTION": "remove"]) { $1 }), source: .kernel)
        }
        let otherBlock = Array(
            "add@/devices/system/memory/memory41\0ACTION=add\0DEVPATH=\(Self.devpath)\0SEQNUM=3012\0SUBSYSTEM=memory\0"
                .utf8)
        #expect(
            throws: UeventDatagramError.headerMismatch(
                key: "DEVPATH", header: "/devices/system/memory/memory41", property: Self.devpath)
        ) { try fields(otherBlock, source: .kernel) }
    }

    @Test func aFieldGivenTwiceWithAnotherValueIsRefused() throws {
        let message = UeventMessages.udev(Self.add, extra: "SEQNUM=3013")
        #expect(throws: UeventDatagramError.repeatedProperty(key: "SEQNUM", offset: message.count - 12)) {
            try fields(message, source: .udev)
        }
        let kernelMessage = UeventMessages.kernel("add", Self.add) + Array("DEVPATH=/devices/system/cpu/cpu1\0".utf8)
        #expect(
            throws: UeventDatagramError.headerMismatch(
                key: "DEVPATH", header: Self.devpath, property: "/devices/system/cpu/cpu1")
        ) { try fields(kernelMessage, source: .kernel) }
        // The same value twice says nothing new.
        #expect(try fields(UeventMessages.udev(Self.add, extra: "SEQNUM=3012"), source: .udev).seqnum == "3012")
    }

    /// Missing fields are the decoder's to reject; a kernel message names its action and devpath in its header.
    @Test func missingFieldsAreLeftForTheDecoder() throws {
        let noSeqnum = try fields(UeventMessages.udev(Self.add.filter { $0.key != "SEQNUM" }), source: .udev)
        #expect(noSeqnum.seqnum == nil && noSeqnum.action == "add")
        #expect(throws: UeventDecodingError.missingField("SEQNUM")) { try UeventDecoder.decode(noSeqnum) }
        let headerOnly = try fields(Array("online@\(Self.devpath)\0SUBSYSTEM=memory\0SEQNUM=7\0".utf8), source: .kernel)
        #expect(headerOnly == RawUevent(action: "online", devpath: Self.devpath, subsystem: "memory", seqnum: "7"))
    }

    /// Only whole `KEY=` entries count: a key inside a value, or a longer key, is not a field.
    @Test func onlyWholeKeysAreFields() throws {
        let message = UeventMessages.udev(
            ["SUBSYSTEM": "memory", "JUNK": "ACTION=add", "ACTIONS": "add", "XDEVPATH": Self.devpath, "SEQNUM": "1"])
        #expect(
            try fields(message, source: .udev) == RawUevent(action: nil, devpath: nil, subsystem: "memory", seqnum: "1")
        )
    }

    /// Nothing is read from a datagram that fails the check, whatever it says.
    @Test func aDatagramThatFailsTheCheckGivesNoFields() {
        let message = UeventMessages.kernel("add", Self.add)
        #expect(throws: UeventDatagramError.kernelMessageFromProcess(port: 4242)) {
            try fields(message, source: .kernel, sender: .init(port: 4242, groups: 1, uid: 0))
        }
        let long = Self.add.merging(["JUNK": String(repeating: "x", count: 2100)]) { $1 }
        #expect(throws: UeventDatagramError.self) { try fields(UeventMessages.udev(long), source: .udev) }
        let udevMessage = UeventMessages.udev(Self.add)
        for count in 0..<udevMessage.count {
            #expect(throws: UeventDatagramError.self) { try fields(Array(udevMessage.prefix(count)), source: .udev) }
        }
    }

    /// Bytes that are not UTF-8 become U+FFFD, which no devpath the decoder accepts contains.
    @Test func bytesThatAreNotUTF8NeverDecodeAsADevice() throws {
        var message = UeventMessages.udev(Self.add)
        let name = try #require(message.firstRange(of: Array("memory40".utf8)))
        message[name.upperBound - 1] = 0xff
        let raw = try fields(message, source: .udev)
        #expect(raw.devpath == "/devices/system/memory/memory4\u{FFFD}")
        #expect(throws: UeventDecodingError.unexpectedDevpath("/devices/system/memory/memory4\u{FFFD}")) {
            try UeventDecoder.decode(raw)
        }
    }
}
