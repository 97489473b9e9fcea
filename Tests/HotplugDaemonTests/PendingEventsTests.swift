import HotplugCore
import Testing

@testable import HotplugSystem

/// How the monitor holds a DIMM's events in kernel mode while the kernel is still adding it.
@Suite struct PendingEventsTests {
    static let start = ContinuousClock.now

    static func event(
        _ action: String, _ name: String, _ subsystem: String = "memory", at: Duration = .zero
    ) -> PendingEvents.Item {
        .event(
            RawUevent(
                action: action, devpath: "/devices/system/\(subsystem)/\(name)", subsystem: subsystem, seqnum: "1",
                receivedAt: start + at))
    }

    static func datagram(_ text: String, at: Duration = .zero) -> PendingEvents.Item {
        let sender = UeventDatagram.Sender(port: 0, groups: UeventDatagram.kernelGroup, uid: 0)
        return .datagram(
            UeventDatagram(bytes: Array(text.utf8)[...], length: text.utf8.count, sender: sender),
            receivedAt: start + at)
    }

    @Test(arguments: [MemoryBurstHolding.addsAndOnlines, .onlines])
    func onlyMemoryAddsAndOnlinesAreHeld(holding: MemoryBurstHolding) {
        for (items, held) in [
            ([Self.event("add", "memory64")], true),
            ([Self.event("online", "memory64")], true),
            ([Self.event("online", "memory64"), Self.datagram("online@/devices/system/memory/memory65\0")], true),
            ([Self.event("add", "memory64"), Self.event("online", "memory64")], true),
            ([Self.event("offline", "memory64")], false),
            ([Self.event("remove", "memory64")], false),
            ([Self.event("online", "cpu4", "cpu")], false),
            ([Self.event("online", "memory64"), Self.event("add", "cpu4", "cpu")], false),
            ([], false),
        ] {
            var pending = PendingEvents()
            for item in items {
                let due = pending.append(item, holding: holding)
                #expect(!due)
            }
            #expect(pending.holdsBurst(at: Self.start) == held, "\(items)")
            let taken = pending.take()
            let rest = pending.take()
            #expect(taken?.count == (items.isEmpty ? nil : items.count))
            #expect(rest == nil && !pending.holdsBurst(at: Self.start))
        }
    }

    @Test func heldUntilQuietButNotForever() {
        var pending = PendingEvents()
        _ = pending.append(Self.event("add", "memory64"), holding: .addsAndOnlines)
        #expect(pending.holdsBurst(at: Self.start + .milliseconds(99)))
        #expect(!pending.holdsBurst(at: Self.start + PendingEvents.quiet))
        // A stream that never pauses is still handed on `longest` after its first event.
        var at = Duration.zero
        while at < PendingEvents.longest + .milliseconds(100) {
            at += .milliseconds(90)
            _ = pending.append(
                Self.datagram("online@/devices/system/memory/memory64\0", at: at), holding: .addsAndOnlines)
            let due = at >= PendingEvents.longest
            #expect(pending.holdsBurst(at: Self.start + at) == !due, "at \(at)")
        }
        guard case .event(let first) = pending.take()?.first else {
            Issue.record("the burst's first event is not first")
            return
        }
        #expect(first.action == "add")
    }

    /// An `add` hotplugd writes for goes on once the kernel has been quiet for `addQuiet`; the
    /// kernel's burst, and `online` events alone, wait for the longer `quiet`.
    @Test(arguments: [MemoryBurstHolding.addsAndOnlines, .onlines])
    func anAddHotplugdWritesForWaitsOnlyForAShortQuiet(holding: MemoryBurstHolding) {
        let writesFor = holding == .onlines
        var pending = PendingEvents()
        _ = pending.append(Self.event("online", "memory63"), holding: holding)
        #expect(pending.holdsBurst(at: Self.start + PendingEvents.addQuiet))
        _ = pending.append(Self.event("add", "memory64", at: .milliseconds(10)), holding: holding)
        _ = pending.append(Self.event("add", "memory65", at: .milliseconds(11)), holding: holding)
        let quietSince = Self.start + .milliseconds(11)
        #expect(pending.holdsBurst(at: quietSince + PendingEvents.addQuiet - .microseconds(1)))
        #expect(pending.holdsBurst(at: quietSince + PendingEvents.addQuiet) == !writesFor)
        #expect(!pending.holdsBurst(at: quietSince + PendingEvents.quiet))
        _ = pending.take()
        // Taken, the next burst of onlines waits the longer quiet again.
        _ = pending.append(Self.event("online", "memory64", at: .milliseconds(20)), holding: holding)
        #expect(pending.holdsBurst(at: Self.start + .milliseconds(20) + PendingEvents.addQuiet))
    }

    @Test func aFullBatchIsDueAtOnce() {
        var pending = PendingEvents()
        for index in 1..<PendingEvents.maxCount {
            let due = pending.append(Self.event("add", "memory\(index)"), holding: .addsAndOnlines)
            #expect(!due)
        }
        let due = pending.append(Self.event("add", "memory\(PendingEvents.maxCount)"), holding: .addsAndOnlines)
        #expect(due)
        let taken = pending.take()
        let rest = pending.take()
        #expect(taken?.count == PendingEvents.maxCount)
        #expect(rest == nil)
    }

    /// Only a header that names a memory event of the mode is held unread; everything else (and
    /// anything cut short) is received as usual.
    @Test func heldUnreadOnlyByItsHeader() {
        for (text, adds, onlines) in [
            ("add@/devices/system/memory/memory64\0ACTION=add\0", true, false),
            ("online@/devices/system/memory/memory64\0", true, true),
            ("add@/devices/system/memory/memory", false, false),
            ("offline@/devices/system/memory/memory64\0", false, false),
            ("remove@/devices/system/memory/memory64\0", false, false),
            ("add@/devices/system/cpu/cpu4\0", false, false),
            ("online@/devices/system/cpu/cpu4\0", false, false),
            ("add@/devices/system/memory/auto_online_blocks\0", false, false),
            ("libudev\0add@/devices/system/memory/memory64\0", false, false),
            ("", false, false),
        ] {
            let bytes = Array(text.utf8)
            #expect(bytes.withUnsafeBytes { MemoryBurstHolding.addsAndOnlines.holds($0) } == adds, "\(text)")
            #expect(bytes.withUnsafeBytes { MemoryBurstHolding.onlines.holds($0) } == onlines, "\(text)")
            #expect(!bytes.withUnsafeBytes { MemoryBurstHolding.none.holds($0) }, "\(text)")
        }
    }

    /// What was left on the socket is dated by the looks that saw it queued, an equal share of
    /// the bytes each; a look that finds no more is no news for the quiet.
    @Test func whatWasLeftOnTheSocketIsDatedByTheLooks() {
        var pending = PendingEvents()
        _ = pending.append(Self.event("add", "memory64"), holding: .addsAndOnlines)
        let grew = [2000, 3000, 3000].enumerated().map { look, bytes in
            pending.noteQueued(bytes: bytes, at: Self.start + .milliseconds(100 * (look + 1)))
        }
        #expect(grew == [true, true, false])
        #expect(pending.holdsBurst(at: Self.start + .milliseconds(299)))
        #expect(!pending.holdsBurst(at: Self.start + .milliseconds(300)))
        // Six received at once, 500 bytes each: four had come by the first look, two by the second.
        for index in 65...70 {
            _ = pending.append(
                Self.datagram("online@/devices/system/memory/memory\(index)\0", at: .milliseconds(310)),
                holding: .addsAndOnlines)
        }
        pending.dateByLooks(itemsFrom: 1)
        let dates = (pending.take() ?? []).map { item -> Duration in
            switch item {
            case .event(let event): (event.receivedAt ?? Self.start) - Self.start
            case .datagram(_, let at): at - Self.start
            }
        }
        #expect(
            dates == [.zero] + [Duration](repeating: .milliseconds(100), count: 4) + [
                .milliseconds(200), .milliseconds(200),
            ])
    }

    /// Without a look, a drain keeps its own time.
    @Test func withoutLooksADrainKeepsItsTime() {
        var pending = PendingEvents()
        _ = pending.append(
            Self.datagram("online@/devices/system/memory/memory65\0", at: .milliseconds(7)), holding: .onlines)
        pending.dateByLooks(itemsFrom: 0)
        guard case .datagram(_, let at) = pending.take()?.first else {
            Issue.record("nothing pending")
            return
        }
        #expect(at == Self.start + .milliseconds(7))
    }
}
