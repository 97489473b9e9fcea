import HotplugCore

/// What the monitor thread has received and not handed on yet: a drain's events, or a memory
/// burst held until the kernel has stopped sending (see `UdevMonitor.holdMemoryBursts`).
///
/// A burst is held while it is only memory blocks being added or onlined: until nothing more has
/// come for `quiet`, and at most `longest` after its first event, so that a stream without end
/// is still handed on. Anything else ends the hold, since it must not wait behind the memory, and
/// so does `maxCount` events (each message stays of a bounded size). Times are the events'
/// `receivedAt`.
struct PendingEvents {
    static let quiet: Duration = .milliseconds(100)
    static let longest: Duration = .seconds(10)
    static let maxCount = 4096

    private(set) var events: [RawUevent] = []
    private var onlyMemoryAdds = true
    private var first = ContinuousClock.now
    private var latest = ContinuousClock.now

    /// Adds a received event; returns what is due to be handed on at once (`maxCount` reached).
    mutating func append(_ event: RawUevent) -> [RawUevent]? {
        let at = event.receivedAt ?? .now
        if events.isEmpty { first = at }
        latest = at
        events.append(event)
        onlyMemoryAdds = onlyMemoryAdds && Self.isMemoryAdd(event)
        return events.count >= Self.maxCount ? take() : nil
    }

    /// Whether the events are a burst to go on holding at `now`.
    func holdsBurst(at now: ContinuousClock.Instant) -> Bool {
        !events.isEmpty && onlyMemoryAdds && now - first < Self.longest && now - latest < Self.quiet
    }

    /// The events, oldest first, and nothing left pending; nil when there were none.
    mutating func take() -> [RawUevent]? {
        guard !events.isEmpty else { return nil }
        defer {
            events = []
            onlyMemoryAdds = true
        }
        return events
    }

    /// A memory block added, or onlined (by the kernel inside the add).
    static func isMemoryAdd(_ event: RawUevent) -> Bool {
        event.subsystem == "memory" && (event.action == "add" || event.action == "online")
    }
}
