import Glibc
import HotplugCore
import Testing

@testable import HotplugDaemon

/// The daemon's loop, run on the test's thread against the fake tree.
extension CoreDriverTests {
    @Test func coldplugsChangesAndWritesArePublishedWithTheStart() async throws {
        try tree.addCPU(2, online: false)
        let queue = InputQueue(capacity: 16)
        // Stopped already: the loop starts, publishes, and ends at its first look at the queue.
        queue.stop()
        let (publications, publish) = AsyncStream<CoreLoop.Publication>.makeStream()
        CoreLoop(driver: engine(), queue: queue, metrics: nil, logger: log.logger(), publish: publish) { _ in }.run()
        var iterator = publications.makeAsyncIterator()
        guard case .started(let changes, let operations, _) = await iterator.next() else {
            Issue.record("the loop did not publish its start")
            return
        }
        #expect(changes.map { "\($0.device) \($0.event)" } == ["cpu2 online"])
        #expect(operations.map(\.device.name) == ["cpu2"])
    }

    /// A DIMM whose onlining takes long (here 300 blocks of 20 ms each, 6 s) keeps the heartbeat
    /// alive at every step (a beat per input would be a second old after a second), and a stop
    /// ends it at the block it is on, not at the DIMM's end.
    @Test func aLongDIMMKeepsTheHeartbeatAndStopsOnTime() throws {
        for index in 100..<400 {
            try tree.addMemory(index, dimm: "PNP0C80:00")
            kernel.delay("memory\(index)", by: .milliseconds(20))
        }
        let driver = engine { $0.memory.onlineType = .onlineMovable }
        let heartbeat = Heartbeat()
        driver.heartbeat = heartbeat
        let queue = InputQueue(capacity: 1024)
        driver.shouldStop = { queue.isStopped }
        let (_, publish) = AsyncStream<CoreLoop.Publication>.makeStream()
        let loop = CoreLoop(driver: driver, queue: queue, metrics: nil, logger: log.logger(), publish: publish) { _ in }
        let thread = try DedicatedThread { loop.run() }
        queue.push(.events((100..<400).map { Self.event("add", "memory\($0)") }))
        var sampled = 0
        var alive = true
        let until = ContinuousClock.now + .milliseconds(2500)
        while ContinuousClock.now < until {
            alive = alive && heartbeat.isAlive(limit: .seconds(1))
            sampled += 1
            usleep(20_000)  // This thread's own wait: the cooperative pool may be busy with other tests.
        }
        let stopped = ContinuousClock.now
        queue.stop()
        thread.join()
        #expect(ContinuousClock.now - stopped < .seconds(2), "a stop waits for one block, not the DIMM (6 s)")
        #expect(alive && sampled >= 3)
        let online = (100..<400).filter { tree.state("memory\($0)") == "online" }.count
        #expect(online > 10 && online < 300, "stopped part-way: \(online) online")
    }
}
