import HotplugCore
import HotplugDaemon
import HotplugFixtures
import HotplugSystem
import Testing

/// The bounded queue between the monitor and the core: overflow is lost events, lost events are
/// one rescan, stop goes first.
@Suite struct InputQueueTests {
    static func burst(_ count: Int) -> MonitorMessage { .events(events(count)) }

    static func events(_ count: Int) -> [RawUevent] {
        (0..<count).map { FakeSysfsTree.event("change", "cpu0", seqnum: $0) }
    }

    @Test func aBurstThatDoesNotFitIsLostEventsAndMemoryStaysBounded() {
        let queue = InputQueue(capacity: 100)
        queue.push(Self.burst(60))
        queue.push(Self.burst(60))  // 120 > 100: dropped
        queue.push(Self.burst(40))
        #expect(queue.counters.overflows == 1)
        #expect(queue.counters.droppedEvents == 60)
        #expect(queue.counters.highWater == 100)
        #expect(queue.next(deadline: nil) == Self.burst(60).asItem)
        #expect(queue.next(deadline: nil) == .eventsLost)
        #expect(queue.next(deadline: nil) == Self.burst(40).asItem)
        #expect(queue.isEmpty)
    }

    @Test func manyLossesAreOneRescanAndALossDuringARescanIsExactlyOneMore() {
        let queue = InputQueue(capacity: 10)
        for _ in 0..<50 { queue.push(.eventsLost) }
        for _ in 0..<50 { queue.push(Self.burst(11)) }  // each overflows
        #expect(queue.next(deadline: nil) == .eventsLost)
        #expect(queue.isEmpty, "one rescan for 100 losses")
        #expect(queue.counters.mergedLosses == 99)
        // Taken: the rescan is running. Losses now queue exactly one more.
        for _ in 0..<10 { queue.push(.eventsLost) }
        #expect(queue.next(deadline: nil) == .eventsLost)
        #expect(queue.isEmpty)
    }

    @Test func aMergedRescanMovesBehindTheEventsQueuedSinceIt() {
        // The rescan's reading must be newer than every event applied before it.
        let queue = InputQueue(capacity: 100)
        queue.push(.eventsLost)
        queue.push(Self.burst(3))
        queue.push(Self.burst(4))
        queue.push(.eventsLost)
        #expect(queue.next(deadline: nil) == .events(Self.events(3) + Self.events(4)))
        #expect(queue.next(deadline: nil) == .eventsLost)
        #expect(queue.isEmpty)
        #expect(queue.counters.mergedLosses == 1)
    }

    /// Bursts queued one after the other are one input, in order, up to `takenAtOnce` events;
    /// anything between them keeps them apart.
    @Test func burstsQueuedInARowAreTakenAsOne() {
        let queue = InputQueue(capacity: 10_000)
        for count in [1, 2, 3] { queue.push(Self.burst(count)) }
        queue.push(.refused("forged"))
        queue.push(Self.burst(4))
        queue.push(Self.burst(InputQueue.takenAtOnce - 4))
        queue.push(Self.burst(1))
        #expect(queue.next(deadline: nil) == .events(Self.events(1) + Self.events(2) + Self.events(3)))
        #expect(queue.next(deadline: nil) == .refused("forged"))
        #expect(queue.next(deadline: nil) == .events(Self.events(4) + Self.events(InputQueue.takenAtOnce - 4)))
        #expect(queue.next(deadline: nil) == Self.burst(1).asItem)
        #expect(queue.isEmpty)
    }

    @Test func aFloodOfRefusalsIsBoundedToo() {
        let queue = InputQueue(capacity: 10)
        for index in 0..<1000 { queue.push(.refused("forged \(index)")) }
        #expect(queue.counters.droppedRefusals == 990)
        var taken = 0
        while !queue.isEmpty, case .refused = queue.next(deadline: nil) { taken += 1 }
        #expect(taken == 10)
        // The places are free again.
        queue.push(Self.burst(10))
        #expect(queue.counters.overflows == 0)
    }

    @Test func stopGoesAheadOfABacklog() {
        let queue = InputQueue(capacity: 100_000)
        for _ in 0..<100 { queue.push(Self.burst(100)) }
        queue.stop()
        #expect(queue.next(deadline: nil) == .stop)
        #expect(queue.isStopped)
    }

    @Test func aDeadlineWithNothingQueuedIsReportedOnTime() {
        let queue = InputQueue(capacity: 10)
        let started = ContinuousClock.now
        #expect(queue.next(deadline: started + .milliseconds(30)) == .deadline)
        let waited = ContinuousClock.now - started
        #expect(waited >= .milliseconds(30) && waited < .seconds(2))
    }

    @Test func aNewConfigurationReplacesOneNotYetTaken() {
        let queue = InputQueue(capacity: 10)
        var first = Config()
        first.cpu.enforce = true
        queue.reconfigure(first)
        queue.reconfigure(Config())
        #expect(queue.next(deadline: nil) == .reconfigure(Config()))
        #expect(queue.isEmpty)
    }
}

extension MonitorMessage {
    var asItem: InputQueue.Item? {
        if case .events(let batch) = self { return .events(batch) }
        return nil
    }
}
