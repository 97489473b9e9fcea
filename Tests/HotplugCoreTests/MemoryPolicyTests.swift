import Testing

@testable import HotplugCore

/// Auto-movable decisions checked against figures worked out by hand from the kernel's rule
/// (mm/memory_hotplug.c): MOVABLE + device <= ratio% x kernel memory at boot, system-wide and per node.
///
/// Set-up for every case: 128 MiB blocks (32768 pages of 4 KiB), 512 MiB of boot memory in
/// kernel zones on node 0 (131072 pages). With the default ratio of 301%, at most
/// 301 x 131072 / 100 = 394526 pages may be movable: 12 blocks (393216 pages), not 13 (425984).
@Suite struct MemoryPolicyTests {
    static let blockSize = 128 << 20
    static let pages = 32768
    static let boot = MemoryAccounting(earlyKernelPages: [0: 4 * pages])

    /// `count` offline blocks from `first`, all from one DIMM unless `dimm` is nil.
    static func dimm(
        _ first: Int, _ count: Int, node: Int = 0, dimm: String? = "PNP0C80:00", zones: [Zone] = ["Normal", "Movable"]
    ) -> [MemoryBlock] {
        (first..<first + count).map {
            MemoryBlock(
                id: DeviceID(kind: .memory, index: $0)!, node: node, validZones: zones,
                firmwareNode: dimm.map { "../../LNXSYSTM:00/LNXSYBUS:00/PNP0A08:00/\($0)" }, online: false)
        }
    }

    static func decide(
        _ blocks: [MemoryBlock], accounting: MemoryAccounting = boot,
        configure: (inout Config.Memory) -> Void = { _ in }
    ) -> [String] {
        var config = Config.Memory()
        configure(&config)
        let decisions = MemoryPolicy(config: config, blockSizeBytes: blockSize).decide(blocks, accounting: accounting)
        return blocks.filter { !$0.online }.map { decisions[$0.id]?.onlineValue?.rawValue ?? "leave" }
    }

    @Test(arguments: [
        // blocks in the DIMM, movable pages already online, expected zone for the whole DIMM
        (8, 0, "online_movable"),  // 262144 <= 394526
        (12, 0, "online_movable"),  // 393216 <= 394526
        (13, 0, "online_kernel"),  // 425984 > 394526
        (8, 8 * pages, "online_kernel"),  // 524288 > 394526
        (4, 8 * pages, "online_movable"),  // 393216 <= 394526
        (1, 12 * pages, "online_kernel"),  // 425984 > 394526
    ])
    func wholeDIMMAgainstTheRatio(blocks: Int, movable: Int, expected: String) {
        var accounting = Self.boot
        accounting.movablePages[0] = movable
        #expect(
            Self.decide(Self.dimm(100, blocks), accounting: accounting) == Array(repeating: expected, count: blocks))
    }

    @Test func secondDIMMInOneBurstSeesTheFirst() {
        let first = Self.dimm(100, 8, dimm: "PNP0C80:00")
        let second = Self.dimm(108, 8, dimm: "PNP0C80:01")
        let third = Self.dimm(116, 4, dimm: "PNP0C80:02")
        let zones = Self.decide(first + second + third)
        #expect(
            zones == Array(repeating: "online_movable", count: 8) + Array(repeating: "online_kernel", count: 8)
                + Array(repeating: "online_movable", count: 4))
    }

    @Test func blocksWithoutADIMMAreDecidedOneByOne() {
        let zones = Self.decide(Self.dimm(100, 14, dimm: nil))
        #expect(zones == Array(repeating: "online_movable", count: 12) + ["online_kernel", "online_kernel"])
    }

    @Test func ratioIsConfigurable() {
        #expect(Self.decide(Self.dimm(100, 1)) { $0.autoMovableRatio = 0 } == ["online_kernel"])
        // 100% of 131072 pages: exactly 4 blocks.
        #expect(
            Self.decide(Self.dimm(100, 4)) { $0.autoMovableRatio = 100 } == Array(repeating: "online_movable", count: 4)
        )
        #expect(
            Self.decide(Self.dimm(100, 5)) { $0.autoMovableRatio = 100 } == Array(repeating: "online_kernel", count: 5))
    }

    @Test func numaAwareChecksTheDIMMsOwnNode() {
        // Node 1 had no memory at boot: nothing may be movable there, though the system has room.
        let onNode1 = Self.dimm(100, 2, node: 1)
        #expect(Self.decide(onNode1) == ["online_kernel", "online_kernel"])
        #expect(Self.decide(onNode1) { $0.autoMovableNUMAAware = false } == ["online_movable", "online_movable"])
        // Node 1 with 256 MiB at boot: 301% of 65536 = 197263 pages, 6 blocks (196608).
        let accounting = MemoryAccounting(earlyKernelPages: [0: 4 * Self.pages, 1: 2 * Self.pages])
        #expect(Self.decide(Self.dimm(100, 6, node: 1), accounting: accounting).allSatisfy { $0 == "online_movable" })
        #expect(Self.decide(Self.dimm(100, 7, node: 1), accounting: accounting).allSatisfy { $0 == "online_kernel" })
    }

    @Test func aKernelZoneComesWithTheFiguresThatDecidedIt() {
        let accounting = MemoryAccounting(
            earlyKernelPages: [0: 2 * Self.pages, 1: 2 * Self.pages], movablePages: [1: Self.pages])
        let policy = MemoryPolicy(config: Config.Memory(), blockSizeBytes: Self.blockSize)
        let onNode1 = Self.dimm(100, 6, node: 1)
        let (decisions, reasons) = policy.decideExplaining(onNode1, accounting: accounting)
        #expect(decisions.values.allSatisfy { $0 == .online(.onlineKernel) })
        #expect(reasons.count == 1)
        #expect(reasons.first?.0 == onNode1.map(\.id))
        #expect(
            reasons.first?.1
                == "node 1: movable 128 MiB + 768 MiB would exceed 301% of 256 MiB of kernel memory at boot")
        // Movable: no reason.
        #expect(policy.decideExplaining(Self.dimm(100, 5, node: 1), accounting: accounting).kernelZoneReasons.isEmpty)
    }

    @Test func aBlockThatCannotBeMovableTakesTheWholeDIMMToTheKernelZone() {
        var blocks = Self.dimm(100, 4)
        blocks[2].validZones = ["Normal"]
        #expect(Self.decide(blocks) == Array(repeating: "online_kernel", count: 4))
    }

    @Test func theRestOfAPartlyKernelDIMMFollowsIt() {
        var blocks = Self.dimm(100, 4)
        blocks[0].online = true
        blocks[0].validZones = ["Normal"]
        #expect(Self.decide(blocks) == Array(repeating: "online_kernel", count: 3))
    }

    @Test func theRestOfAPartlyMovableDIMMStaysMovable() {
        // Blocks 100-101 already movable (counted in the accounting), 102-103 still offline.
        var blocks = Self.dimm(100, 4)
        for index in 0..<2 {
            blocks[index].online = true
            blocks[index].validZones = ["Movable"]
        }
        var accounting = Self.boot
        accounting.movablePages[0] = 2 * Self.pages
        #expect(Self.decide(blocks, accounting: accounting) == ["online_movable", "online_movable"])
    }

    @Test func explicitOnlineTypesAndNodeRules() {
        let node0 = Self.dimm(100, 2, node: 0)
        let node1 = Self.dimm(200, 2, node: 1, dimm: "PNP0C80:01")
        let zones = Self.decide(node0 + node1) {
            $0.onlineType = .online
            $0.nodes = [Config.NodeRule(node: 1, onlineType: .onlineMovable)]
        }
        #expect(zones == ["online", "online", "online_movable", "online_movable"])
        let left = Self.decide(node0 + node1) {
            $0.nodes = [Config.NodeRule(node: 1, autoOnline: false)]
        }
        #expect(left == ["online_movable", "online_movable", "leave", "leave"])
        #expect(Self.decide(node0) { $0.autoOnline = false } == ["leave", "leave"])
        #expect(Self.decide(node0) { $0.onlineType = .onlineKernel } == ["online_kernel", "online_kernel"])
    }

    @Test func accountingCountsOnlineBlocksByZone() {
        var blocks = Self.dimm(0, 6, dimm: nil)
        for index in blocks.indices { blocks[index].online = true }
        blocks[0].validZones = ["none"]
        blocks[1].validZones = ["DMA32"]
        blocks[2].validZones = ["Normal"]
        blocks[3].validZones = ["Movable"]
        blocks[4].validZones = ["Normal"]
        blocks[4].node = 1
        blocks[5].online = false
        let accounting = MemoryAccounting(blocks: blocks, pagesPerBlock: Self.pages)
        #expect(accounting.earlyKernelPages == [0: 3 * Self.pages, 1: Self.pages])
        #expect(accounting.movablePages == [0: Self.pages])
    }
}
