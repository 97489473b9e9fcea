import CHotplug
import Glibc
import HotplugCore
import HotplugSystem

/// The bounded queue between the monitor thread and the core's thread.
///
/// Events wait here in order, at most `capacity` of them; a burst that does not fit is dropped and
/// counts as lost events, exactly like an overrun of the netlink socket. Lost events are one
/// pending rescan however often they happen: a second loss while a rescan is queued merges into
/// it (and moves it behind the events queued since), and a loss while one is running queues
/// exactly one more. A new configuration replaces one
/// not yet taken. Stop goes past everything queued.
///
/// The consumer waits in poll(2) on an eventfd with the core's next deadline as the timeout, so
/// that timers live in one place. Bursts of events queued one after the other are taken as one
/// (up to `takenAtOnce` events): while the core's thread was busy (a write waits for the kernel's
/// add), the monitor may have queued a datagram at a time, and each input costs the core a pass
/// and the daemon a publication.
public final class InputQueue: Sendable {
    public enum Item: Sendable, Equatable {
        case events([RawUevent])
        case refused(String)
        case eventsLost
        case reconfigure(Config)
        /// The monitor cannot go on.
        case failed(String)
        /// The deadline passed with nothing queued.
        case deadline
        case stop
        /// A question about what the daemon knows (`ControlServer`), answered on the core's thread.
        case query(CoreQuery)
    }

    /// What the queue has done, for the metrics and the tests.
    public struct Counters: Sendable, Equatable {
        /// Bursts dropped because the queue was full, and their events.
        public var overflows = 0
        public var droppedEvents = 0
        /// Refused datagrams not queued because the queue was full.
        public var droppedRefusals = 0
        /// Losses merged into a rescan already queued.
        public var mergedLosses = 0
        /// The most events ever queued at once.
        public var highWater = 0
    }

    private struct State {
        var items: [Item] = []
        var head = 0
        var queuedEvents = 0
        var lossQueued = false
        var stopped = false
        var counters = Counters()
    }

    public let capacity: Int
    /// The most events taken as one input.
    public static let takenAtOnce = 4096
    private let state = Locked(State())
    private let wakeFD: Int32

    public init(capacity: Int) {
        self.capacity = capacity
        self.wakeFD = chotplug_eventfd()
        precondition(wakeFD >= 0, "eventfd failed: errno \(errno)")
    }

    deinit { close(wakeFD) }

    // MARK: - Producers

    /// Queues a burst, or counts it lost when it does not fit. Never blocks.
    public func push(_ message: MonitorMessage) {
        switch message {
        case .events(let batch):
            let fits = state.withLock { state -> Bool in
                guard state.queuedEvents + batch.count <= capacity else {
                    state.counters.overflows += 1
                    state.counters.droppedEvents += batch.count
                    return false
                }
                state.items.append(.events(batch))
                state.queuedEvents += batch.count
                state.counters.highWater = max(state.counters.highWater, state.queuedEvents)
                return true
            }
            if !fits { lost() }
        case .eventsLost:
            lost()
        case .refused(let reason):
            // A refusal takes a place like an event, so a flood of forged datagrams is bounded
            // too; past the capacity it is only counted (its log line is rate-limited anyway).
            state.withLock { state in
                guard state.queuedEvents < capacity else {
                    state.counters.droppedRefusals += 1
                    return
                }
                state.items.append(.refused(reason))
                state.queuedEvents += 1
            }
        case .failed(let reason):
            state.withLock { $0.items.append(.failed(reason)) }
        case .ready:
            return
        }
        wake()
    }

    /// Events were lost: one rescan, merged with one already queued. The merged rescan moves to
    /// the end, behind the events queued since: its reading must be newer than every event
    /// applied before it, or an older event (an `offline` since undone, and whose undoing was
    /// the event lost) would be applied over it.
    private func lost() {
        state.withLock { state in
            if state.lossQueued {
                state.counters.mergedLosses += 1
                if let index = state.items[state.head...].lastIndex(of: .eventsLost), index != state.items.count - 1 {
                    state.items.remove(at: index)
                    state.items.append(.eventsLost)
                }
            } else {
                state.items.append(.eventsLost)
                state.lossQueued = true
            }
        }
        wake()
    }

    /// A new configuration; one not yet taken is replaced.
    public func reconfigure(_ config: Config) {
        state.withLock { state in
            if let index = state.items[state.head...].firstIndex(where: {
                if case .reconfigure = $0 { true } else { false }
            }) {
                state.items[index] = .reconfigure(config)
            } else {
                state.items.append(.reconfigure(config))
            }
        }
        wake()
    }

    /// A question for the core's thread, in turn with the events before it.
    public func ask(_ query: CoreQuery) {
        state.withLock { $0.items.append(.query(query)) }
        wake()
    }

    /// Ends the consumer's loop at its next look, whatever is queued.
    public func stop() {
        state.withLock { $0.stopped = true }
        wake()
    }

    public var isStopped: Bool { state.withLock { $0.stopped } }
    /// Whether nothing is waiting to be taken.
    public var isEmpty: Bool { state.withLock { $0.head >= $0.items.count } }
    public var counters: Counters { state.withLock { $0.counters } }

    // MARK: - The consumer

    /// The next item, waiting until one comes or `deadline` passes.
    public func next(deadline: ContinuousClock.Instant?) -> Item {
        while true {
            if let item = take() { return item }
            var timeout: Int32 = -1
            if let deadline {
                let left = deadline - .now
                if left <= .zero { return .deadline }
                let (seconds, attoseconds) = left.components
                timeout = Int32(clamping: seconds * 1000 + attoseconds / 1_000_000_000_000_000 + 1)
            }
            var fd = pollfd(fd: wakeFD, events: Int16(POLLIN), revents: 0)
            let ready = poll(&fd, 1, timeout)
            if ready < 0 && errno != EINTR { preconditionFailure("poll on the queue's eventfd failed: errno \(errno)") }
            var count: UInt64 = 0
            _ = read(wakeFD, &count, 8)  // EAGAIN when a wake-up was already read: nothing to do.
        }
    }

    private func take() -> Item? {
        state.withLock { state in
            if state.stopped { return .stop }
            guard state.head < state.items.count else { return nil }
            var item = state.items[state.head]
            state.head += 1
            if case .events(var batch) = item {
                while state.head < state.items.count, case .events(let next) = state.items[state.head],
                    batch.count + next.count <= Self.takenAtOnce
                {
                    batch += next
                    state.head += 1
                }
                item = .events(batch)
            }
            // Compact now and then so the array does not grow without bound.
            if state.head >= 1024 && state.head * 2 >= state.items.count {
                state.items.removeFirst(state.head)
                state.head = 0
            }
            switch item {
            case .events(let batch): state.queuedEvents -= batch.count
            case .refused: state.queuedEvents -= 1
            case .eventsLost: state.lossQueued = false
            default: break
            }
            return item
        }
    }

    private func wake() {
        var one: UInt64 = 1
        _ = write(wakeFD, &one, 8)  // Only fails when the counter would overflow: a wake-up is pending then anyway.
    }
}

/// Work run on the core's thread with the driver, for a reader elsewhere (the control socket's
/// `status`): the core's state is that thread's alone.
public final class CoreQuery: Sendable, Equatable {
    let body: @Sendable (CoreDriver) -> Void

    public init(_ body: @escaping @Sendable (CoreDriver) -> Void) { self.body = body }

    public static func == (lhs: CoreQuery, rhs: CoreQuery) -> Bool { lhs === rhs }
}
