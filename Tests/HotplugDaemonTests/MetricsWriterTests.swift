import Dispatch
import Glibc
import HotplugFixtures
import HotplugSystem
import Testing

@testable import HotplugDaemon

/// The metrics file's writer thread, with a write that blocks until the test lets it go (as on a
/// hung filesystem): what waits is coalesced, the slow write is logged once, a stop does not wait.
@Suite struct MetricsWriterTests {
    let log = LogCapture()
    /// Each write waits for one signal here.
    let gate = DispatchSemaphore(value: 0)
    let started = Texts()
    let written = Texts()

    final class Texts: Sendable {
        private let texts = Locked<[String]>([])
        func append(_ text: String) { texts.withLock { $0.append(text) } }
        var all: [String] { texts.withLock { $0 } }
    }

    func writer(limit: Duration) throws -> MetricsWriter {
        try MetricsWriter(path: "/test/hotplugd.prom", limit: limit, logger: log.logger()) {
            [gate, started, written] text in
            started.append(text)
            gate.wait()
            written.append(text)
        }
    }

    /// Stops `writer` and waits, on this thread, for the stop to return; whether the thread ended.
    func stop(_ writer: MetricsWriter) -> Bool {
        let stopped = DispatchSemaphore(value: 0)
        let ended = Texts()
        writer.stop { hasEnded in
            if hasEnded { ended.append("ended") }
            stopped.signal()
        }
        stopped.wait()
        return !ended.all.isEmpty
    }

    @Test func textsThatWaitForABlockedWriteAreCoalescedToTheNewest() throws {
        let writer = try writer(limit: .seconds(5))
        writer.submit("1")
        try waitUntil { started.all == ["1"] }
        // The thread is stuck in the first write; submitting does not wait for it.
        let clock = ContinuousClock()
        let submitting = clock.measure {
            for text in ["2", "3", "4"] { writer.submit(text) }
        }
        #expect(submitting < .milliseconds(100))
        gate.signal()
        try waitUntil { started.all.count == 2 }
        gate.signal()
        #expect(stop(writer))
        #expect(written.all == ["1", "4"])
        #expect(!writer.isBusy)
    }

    @Test func aWriteOverItsLimitIsLoggedOnceAndItsEndToo() throws {
        let writer = try writer(limit: .milliseconds(200))
        writer.submit("1")
        usleep(500_000)
        #expect(log.count("has not returned within its time limit") == 1)
        gate.signal()
        // The next one is slow too: the first line said it already.
        writer.submit("2")
        try waitUntil { started.all.count == 2 }
        usleep(500_000)
        gate.signal()
        #expect(stop(writer))
        #expect(written.all == ["1", "2"])
        #expect(log.count("has not returned within its time limit") == 1)
        #expect(log.count("the slow metrics file write returned") == 1)
    }

    @Test func aStopWaitsForAStuckWriteNoLongerThanTheLimit() throws {
        let writer = try writer(limit: .milliseconds(300))
        writer.submit("1")
        try waitUntil { started.all == ["1"] }
        writer.submit("2")
        let clock = ContinuousClock()
        let stopping = clock.measure { #expect(!stop(writer)) }
        #expect(stopping >= .milliseconds(300) && stopping < .seconds(1), "\(stopping)")
        #expect(log.contains("stopping without the last metrics write"))
        // Let the thread go: it writes what waits and ends.
        gate.signal()
        gate.signal()
        try waitUntil { !writer.isBusy }
        #expect(written.all == ["1", "2"])
    }

    @Test func aFailingWriteIsLoggedOncePerErrorAndItsRecovery() throws {
        struct Refused: Error {}
        let recovered = Texts()  // Empty while the writes fail.
        let writer = try MetricsWriter(path: "/test/hotplugd.prom", logger: log.logger()) { [recovered] _ in
            if recovered.all.isEmpty { throw Refused() }
        }
        for text in ["1", "2", "3"] {
            writer.submit(text)
            try waitUntil { !writer.isBusy }
        }
        recovered.append("now")
        writer.submit("4")
        #expect(stop(writer))
        #expect(log.count("cannot write the metrics file") == 1)
        #expect(log.count("metrics file written again") == 1)
    }
}
