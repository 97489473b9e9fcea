import HotplugCore
import Testing

@testable import HotplugSystem

/// How the monitor holds a DIMM's events in kernel mode while the kernel is still adding it.
@Suite struct PendingEventsTests {
    static let start = ContinuousClock.now

    static func event(
        _ action: String, _ name: String, _ subsystem: String = "memory", at: Duration = .zero
    ) -> RawUevent {
        RawUevent(
            action: action, devpath: "/devices/system/\(subsystem)/\(name)", subsystem: subsystem, seqnum: "1",
            receivedAt: start + at)
    }

    @Test func onlyMemoryAddsAndOnlinesAreHeld() {
        for (events, held) in [
            ([Self.event("add", "memory64")], true),
            ([Self.event("online", "memory64")], true),
            ([Self.event("add", "memory64"), Self.event("online", "memory64")], true),
            ([Self.event("offline", "memory64")], false),
            ([Self.event("remove", "memory64")], false),
            ([Self.event("add", "cpu4", "cpu")], false),
            ([Self.event("add", "memory64"), Self.event("add", "cpu4", "cpu")], false),
            ([], false),
        ] {
            var pending = PendingEvents()
            for event in events { #expect(pending.append(event) == nil) }
            #expect(pending.holdsBurst(at: Self.start) == held, "\(events.map { "\($0.action!) \($0.devpath!)" })")
            #expect(pending.take()?.count == (events.isEmpty ? nil : events.count))
            #expect(pending.take() == nil && !pending.holdsBurst(at: Self.start))
        }
    }

    @Test func heldUntilQuietButNotForever() {
        var pending = PendingEvents()
        _ = pending.append(Self.event("add", "memory64"))
        #expect(pending.holdsBurst(at: Self.start + .milliseconds(99)))
        #expect(!pending.holdsBurst(at: Self.start + PendingEvents.quiet))
        // A stream that never pauses is still handed on `longest` after its first event.
        var at = Duration.zero
        while at < PendingEvents.longest + .milliseconds(100) {
            at += .milliseconds(90)
            _ = pending.append(Self.event("online", "memory64", at: at))
            let due = at >= PendingEvents.longest
            #expect(pending.holdsBurst(at: Self.start + at) == !due, "at \(at)")
        }
        #expect(pending.take()?.first?.action == "add")
    }

    @Test func aFullBatchIsHandedOnAtOnce() {
        var pending = PendingEvents()
        for index in 1..<PendingEvents.maxCount {
            #expect(pending.append(Self.event("add", "memory\(index)")) == nil)
        }
        let due = pending.append(Self.event("add", "memory\(PendingEvents.maxCount)"))
        #expect(due?.count == PendingEvents.maxCount)
        #expect(due?.last?.devpath == "/devices/system/memory/memory\(PendingEvents.maxCount)")
        #expect(pending.take() == nil)
    }
}
