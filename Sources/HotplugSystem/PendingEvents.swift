import HotplugCore

/// Which memory events the monitor holds back as a burst (see `UdevMonitor.holdMemoryBursts`).
public enum MemoryBurstHolding: UInt8, Sendable {
    /// Each drain is handed on as it ends.
    case none
    /// Memory `online` events, and `add` events for a moment: when hotplugd onlines blocks itself.
    /// An `online` is the answer to a write it made (the write's result already said so) or news
    /// of somebody else's online, and none is to be acted on while the add goes on. An `add` is
    /// what hotplugd writes for, and goes on as soon as the kernel has stopped adding
    /// (`PendingEvents.addQuiet`): a write while it still adds would find the device hotplug lock
    /// held and sleep (see `UdevMonitor`).
    case onlines
    /// Memory `add` and `online` events: when the kernel onlines memory inside the add.
    case addsAndOnlines

    /// Whether an event is one to hold: a memory `add` or `online`, in either mode.
    func holds(_ event: RawUevent) -> Bool {
        self != .none && event.subsystem == "memory" && (event.action == "online" || event.action == "add")
    }

    /// Whether a kernel datagram begins as a memory block's event to hold unread (its header is
    /// `ACTION@DEVPATH`): such a datagram can be held as it is and its fields taken afterwards,
    /// which is the costly part of receiving it. Whatever it turns out to be, it is then checked
    /// whole as any other. An `add` hotplugd writes for is read at once (`onlines`): its block's
    /// write follows within milliseconds.
    func holds(_ bytes: UnsafeRawBufferPointer) -> Bool {
        let headers = self == .addsAndOnlines ? Self.headers : self == .onlines ? [Self.headers[1]] : []
        return headers.contains { header in
            bytes.count > header.count && zip(header, bytes).allSatisfy { $0 == $1 }
        }
    }

    private static let headers = ["add", "online"].map { Array("\($0)@/devices/system/memory/memory".utf8) }
}

/// What the monitor thread has received and not handed on yet: a drain's events, or a memory
/// burst held until the kernel has stopped sending (see `UdevMonitor.holdMemoryBursts`).
///
/// A burst is held while it is only the memory events held (`MemoryBurstHolding`): until nothing more has
/// come for `quiet` (received, or seen queued on the socket by a look while the rest of the burst
/// is left there), or for `addQuiet` once it holds an `add` that hotplugd writes for, and at most
/// `longest` after its first event, so that a stream without end is still handed on. Anything
/// else received ends the hold, since it must not wait behind the memory (what is left on the
/// socket with the burst waits for its end), and so does `maxCount` items (each message stays of
/// a bounded size).
struct PendingEvents {
    static let quiet: Duration = .milliseconds(100)
    /// How long the kernel must have sent nothing before an `add` hotplugd writes for goes on. A
    /// driver adds blocks a few at a time (virtio-mem four, at most a millisecond apart in a TCG
    /// guest), holding the device hotplug lock for each, and an ACPI DIMM holds it for all of its
    /// blocks; the lock is let go well within this after the last block's `add` is sent.
    static let addQuiet: Duration = .milliseconds(2)
    static let longest: Duration = .seconds(10)
    static let maxCount = 4096

    /// One received event, or a held datagram whose fields are taken when it is handed on.
    enum Item {
        case event(RawUevent)
        /// A kernel datagram that begins as a memory event to hold (`MemoryBurstHolding.holds(_:)`).
        case datagram(UeventDatagram, receivedAt: ContinuousClock.Instant)
    }

    private(set) var items: [Item] = []
    /// Whether every item is one to hold.
    private var onlyHeld = true
    /// Whether an item is an `add` hotplugd writes for (`MemoryBurstHolding.onlines`).
    private(set) var holdsAdd = false
    private var first = ContinuousClock.now
    private var latest = ContinuousClock.now
    /// While the rest of the burst is left on the socket (see `UdevMonitor`): each look that found
    /// it holding more than the last, and how many bytes it held then.
    private var looks: [(at: ContinuousClock.Instant, bytes: Int)] = []

    /// Adds a received item; true when `maxCount` is reached and the items are due at once.
    mutating func append(_ item: Item, holding: MemoryBurstHolding) -> Bool {
        let at: ContinuousClock.Instant
        switch item {
        case .event(let event):
            at = event.receivedAt ?? .now
            onlyHeld = onlyHeld && holding.holds(event)
            holdsAdd = holdsAdd || (holding == .onlines && event.action == "add" && holding.holds(event))
        case .datagram(_, let receivedAt):
            at = receivedAt
        }
        if items.isEmpty { first = at }
        latest = at
        items.append(item)
        return items.count >= Self.maxCount
    }

    /// Notes a look at what the socket holds unreceived while the burst is left on it; true when
    /// it holds more than at the last look. That counts as the burst's latest news, for the quiet.
    mutating func noteQueued(bytes: Int, at: ContinuousClock.Instant) -> Bool {
        guard bytes > (looks.last?.bytes ?? 0) else { return false }
        looks.append((at, bytes))
        latest = at
        return true
    }

    /// Dates the items appended from `start` on (what was left on the socket, received at once)
    /// by the looks: the k-th of n came by the first look at which the socket held k n-ths of
    /// what it held at the last. A burst's datagrams are alike in size (one block's event each),
    /// so each is dated to the look that first saw it, as if it had been received then. Without
    /// looks the items keep the drain's time.
    mutating func dateByLooks(itemsFrom start: Int) {
        defer { looks = [] }
        guard let total = looks.last?.bytes, start < items.count else { return }
        let count = items.count - start
        var look = 0
        for index in start..<items.count {
            let share = (index - start + 1) * total
            while looks[look].bytes * count < share { look += 1 }
            let at = looks[look].at
            switch items[index] {
            case .event(var event):
                event.receivedAt = at
                items[index] = .event(event)
            case .datagram(let datagram, _):
                items[index] = .datagram(datagram, receivedAt: at)
            }
            if index == 0 { first = at }
            latest = at
        }
    }

    /// Whether the items are a burst to go on holding at `now`.
    func holdsBurst(at now: ContinuousClock.Instant) -> Bool {
        !items.isEmpty && onlyHeld && now - first < Self.longest
            && now - latest < (holdsAdd ? Self.addQuiet : Self.quiet)
    }

    /// The items, oldest first, and nothing left pending; nil when there were none.
    mutating func take() -> [Item]? {
        guard !items.isEmpty else { return nil }
        defer {
            items = []
            onlyHeld = true
            holdsAdd = false
            looks = []
        }
        return items
    }
}
