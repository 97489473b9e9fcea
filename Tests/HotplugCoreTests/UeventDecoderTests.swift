import Testing

@testable import HotplugCore

@Suite struct UeventDecoderTests {
    static func raw(
        _ action: String? = "add", _ devpath: String? = "/devices/system/memory/memory32",
        subsystem: String? = "memory", seqnum: String? = "4711"
    ) -> RawUevent {
        RawUevent(action: action, devpath: devpath, subsystem: subsystem, seqnum: seqnum)
    }

    @Test func decodesAMemoryAdd() throws {
        let event = try UeventDecoder.decode(Self.raw())
        #expect(event.action == .add)
        #expect(event.device == DeviceID(kind: .memory, index: 32))
        #expect(event.seqnum == 4711)
    }

    @Test(arguments: UeventAction.allCases)
    func decodesEveryDriverCoreAction(action: UeventAction) throws {
        let event = try UeventDecoder.decode(Self.raw(action.rawValue, "/devices/system/cpu/cpu3", subsystem: "cpu"))
        #expect(event.action == action)
        #expect(event.device.name == "cpu3")
    }

    @Test(arguments: [
        (raw(nil), UeventDecodingError.missingField("ACTION")),
        (raw("explode"), .unknownAction("explode")),
        (raw(subsystem: nil), .missingField("SUBSYSTEM")),
        (raw(subsystem: "block"), .unsupportedSubsystem("block")),
        (raw("add", nil), .missingField("DEVPATH")),
        (raw(seqnum: nil), .missingField("SEQNUM")),
        (raw(seqnum: "12a"), .badSeqnum("12a")),
        (raw(seqnum: "-1"), .badSeqnum("-1")),
        (raw(seqnum: "99999999999999999999999"), .badSeqnum("99999999999999999999999")),
        (
            raw("add", "/devices/system/cpu/cpu1", subsystem: "memory"),
            .subsystemMismatch(subsystem: "memory", devpath: "/devices/system/cpu/cpu1")
        ),
    ])
    func rejectsBrokenFields(raw: RawUevent, expected: UeventDecodingError) {
        #expect(throws: expected) { try UeventDecoder.decode(raw) }
    }

    @Test(arguments: [
        "/devices/system/memory/memory32/../../../../kernel",
        "/devices/system/memory/../cpu/cpu1",
        "/devices/system/memory/memory32/",
        "/devices/system/memory/memory032",
        "/devices/system/memory/memory-1",
        "/devices/system/memory/memory 1",
        "/devices/system/memory/memory",
        "/devices/system/memory/memory99999999",
        "devices/system/memory/memory1",
        "/sys/devices/system/memory/memory1",
        "/devices/system/memory/memory1/state",
        "/devices/system/node/node0",
        "/devices/system/memory/block_size_bytes",
        "/devices/system/cpu/memory4",
        "/devices/system/memory//memory4",
        "/devices/system//memory4",
        "",
    ])
    func rejectsDevpathsOutsideTheTwoDeviceDirectories(devpath: String) {
        #expect(throws: UeventDecodingError.unexpectedDevpath(devpath)) {
            try UeventDecoder.decode(Self.raw("add", devpath))
        }
    }

    @Test func deviceNamesRoundTrip() {
        for name in ["cpu0", "cpu4095", "memory0", "memory16777216"] {
            #expect(DeviceID(name: name)?.name == name)
        }
        for name in ["cpu", "cpu01", "memory16777217", "cpux", "mem1", "node0", "cpu1 "] {
            #expect(DeviceID(name: name) == nil, "\(name) must be refused")
        }
    }
}
