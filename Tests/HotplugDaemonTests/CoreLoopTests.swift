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
}
