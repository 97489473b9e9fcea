import Testing

@testable import HotplugCore

@Suite struct OfflinePlanTests {
    static func id(_ name: String) -> DeviceID { DeviceID(name: name)! }

    static let present: [DeviceID: OfflinePlan.Device] = {
        var devices: [OfflinePlan.Device] = [
            .init(id: id("cpu0"), online: true, hasOnlineAttribute: false),
            .init(id: id("cpu1"), online: true),
            .init(id: id("cpu2"), online: false),
            .init(id: id("memory0"), online: true, zone: "none"),
            .init(id: id("memory1"), online: true, zone: "DMA32"),
        ]
        devices += (32..<36).map { .init(id: id("memory\($0)"), online: true, zone: "Movable") }
        return Dictionary(uniqueKeysWithValues: devices.map { ($0.id, $0) })
    }()

    @Test func movableBlocksGoHighestFirst() {
        let (plan, refusals) = OfflinePlan.offline((32..<36).map { Self.id("memory\($0)") }, present: Self.present)
        #expect(refusals.isEmpty)
        #expect(plan.map(\.name) == ["memory35", "memory34", "memory33", "memory32"])
    }

    @Test func whatCannotGoIsRefusedUpFront() {
        let (_, refusals) = OfflinePlan.offline(
            [Self.id("cpu0"), Self.id("memory0"), Self.id("memory1"), Self.id("memory99")], present: Self.present)
        #expect(
            refusals == [
                .notPresent(Self.id("memory99")), .kernelZone(Self.id("memory1"), zone: "DMA32"),
                .spansZones(Self.id("memory0")), .noOnlineAttribute(Self.id("cpu0")),
            ])
        #expect(refusals[1].description.contains("--force"))
    }

    @Test func forceTriesKernelZonesButNeverSpanningBlocks() {
        let (plan, refusals) = OfflinePlan.offline(
            [Self.id("memory1"), Self.id("memory0")], present: Self.present, force: true)
        #expect(plan == [Self.id("memory1")])
        #expect(refusals == [.spansZones(Self.id("memory0"))])
    }

    @Test func theLastOnlineCPUStays() {
        var present = Self.present
        present[Self.id("cpu0")]!.hasOnlineAttribute = true
        let (_, refusals) = OfflinePlan.offline([Self.id("cpu0"), Self.id("cpu1")], present: present)
        #expect(refusals == [.lastOnlineCPU(Self.id("cpu0"))])
        let (plan, none) = OfflinePlan.offline([Self.id("cpu1"), Self.id("cpu2")], present: Self.present)
        #expect(none.isEmpty)
        #expect(plan == [Self.id("cpu1")], "cpu2 is offline already")
    }

    @Test func restoreValuesPutBlocksBackInTheirZone() {
        #expect(OfflinePlan.restoreValue(for: Self.present[Self.id("memory32")]!) == "online_movable")
        #expect(OfflinePlan.restoreValue(for: Self.present[Self.id("memory1")]!) == "online_kernel")
        #expect(OfflinePlan.restoreValue(for: Self.present[Self.id("cpu1")]!) == "1")
    }
}
