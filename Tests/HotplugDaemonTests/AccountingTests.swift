import HotplugFixtures
import Testing

@testable import HotplugCore
@testable import HotplugDaemon

/// The engine keeps movable memory per node as it goes; it must equal a count of every block.
extension CoreDriverTests {
    func recount(_ engine: CoreDriver) -> [Int: Int] {
        let online = engine.core.records.keys.compactMap { engine.core.policyBlock($0) }.filter(\.online)
        return MemoryAccounting(blocks: online, pagesPerBlock: engine.core.pagesPerBlock).movablePages
    }

    @Test func movableMemoryIsCountedAsBlocksComeAndGo() throws {
        let engine = engine { $0.memory.autoMovableNUMAAware = false }
        try engine.start()
        for index in 16..<24 { try tree.addMemory(index, dimm: "PNP0C80:00") }
        for index in 24..<28 { try tree.addMemory(index, node: 1, dimm: "PNP0C80:01") }
        engine.handle((16..<28).map { Self.event("add", "memory\($0)") })
        #expect(engine.core.accounting().movablePages == [0: 8 * 32768, 1: 4 * 32768])
        #expect(engine.core.accounting().movablePages == recount(engine))

        // Taken offline by somebody, one block removed, another onlined behind the daemon's back.
        try tree.write("devices/system/memory/memory17/state", "offline")
        try tree.remove("memory16")
        engine.handle([Self.event("offline", "memory17"), Self.event("remove", "memory16")])
        #expect(engine.core.accounting().movablePages == [0: 6 * 32768, 1: 4 * 32768])
        #expect(engine.core.accounting().movablePages == recount(engine))
        engine.eventsLost()
        #expect(engine.core.accounting().movablePages == recount(engine))
    }
}
