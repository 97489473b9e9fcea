import HotplugCore
import Testing

@testable import HotplugDaemon

@Suite struct StatusReportTests {
    static func device(
        _ name: String, _ state: DeviceState, zone: String? = nil, node: Int? = 0, dimm: String? = nil,
        policy: String? = nil
    ) -> DeviceStatus {
        let id = DeviceID(name: name)!
        return DeviceStatus(
            device: name, kind: id.kind, index: id.index, state: state, zone: zone, node: node, dimm: dimm,
            policy: policy)
    }

    static let blockSize = 128 << 20
    static let devices: [DeviceStatus] =
        [device("cpu0", .online), device("cpu1", .online), device("cpu2", .online), device("cpu3", .blocked)]
        + (0..<4).map { device("memory\($0)", .online, zone: $0 == 0 ? "none" : "DMA32") }
        + (32..<40).map { device("memory\($0)", .online, zone: "Movable", dimm: "PNP0C80:00") }
        + (40..<44).map { device("memory\($0)", .offline, dimm: "PNP0C80:01", policy: "online (online_movable)") }

    @Test func blocksCollapseIntoRangesLikeLsmem() {
        let report = StatusReport(devices: Self.devices, blockSizeBytes: Self.blockSize)
        #expect(report.memory.ranges.map { "\($0.firstBlock)-\($0.lastBlock)" } == ["0-0", "1-3", "32-39", "40-43"])
        let movable = report.memory.ranges[2]
        #expect(movable.startAddress == 0x1_0000_0000)
        #expect(movable.endAddress == 0x1_3fff_ffff)
        #expect(movable.sizeBytes == 1 << 30)
        #expect(movable.zone == "Movable" && movable.dimm == "PNP0C80:00" && movable.state == .online)
        #expect(report.memory.ranges[3].policy == "online (online_movable)")
    }

    @Test func totalsPerZoneAndNode() {
        let totals = StatusReport(devices: Self.devices, blockSizeBytes: Self.blockSize).memory.totals
        #expect(totals.onlineBytes == 12 * Self.blockSize)
        #expect(totals.offlineBytes == 4 * Self.blockSize)
        #expect(totals.onlineBytesByZone == ["none": Self.blockSize, "DMA32": 3 * Self.blockSize, "Movable": 1 << 30])
        #expect(totals.onlineBytesByNode == ["0": 12 * Self.blockSize])
    }

    @Test func textShowsRangesSizesAndTotals() {
        let text = StatusReport(devices: Self.devices, blockSizeBytes: Self.blockSize).text
        let lines = text.split(separator: "\n").map(String.init)
        #expect(lines.contains("0-2  online   0     -"))
        #expect(lines.contains("3    blocked  0     -"))
        #expect(
            lines.contains {
                $0.hasPrefix("0x0000000100000000-0x000000013fffffff    1G  online   Movable  0     PNP0C80:00  32-39")
            })
        #expect(lines.contains("Memory block size:  128M"))
        #expect(lines.contains("Total online memory:  1.5G (DMA32 384M, Movable 1G, none 128M; node 0 1.5G)"))
        #expect(lines.contains("Total offline memory: 512M"))
    }

    @Test func sizesReadLikeLsmem() {
        #expect(StatusReport.size(128 << 20) == "128M")
        #expect(StatusReport.size(3 << 29) == "1.5G")
        #expect(StatusReport.size(32 << 30) == "32G")
        #expect(StatusReport.size(0) == "0B")
    }
}
