import CHotplug
import Glibc
import HotplugCore
import Synchronization

/// Listens to cpu and memory uevents on a thread of its own.
///
/// libudev opens the netlink socket and filters it; the thread receives every datagram itself,
/// checks it and takes the event's fields from the bytes it checked (`UeventDatagram`). libudev
/// objects must be created, used and freed by one thread (libudev(3)), so that thread owns the
/// `udev` context and the monitor from start to end; it waits in poll(2) on the socket and an
/// eventfd used to stop it, drains every queued datagram in one go, and passes the events on as
/// `RawUevent` values.
///
/// Memory bursts are held and handed on whole once the kernel has stopped sending
/// (`holdMemoryBursts`, `PendingEvents`): `add` and `online` events while the kernel onlines memory
/// inside the add, `online` events while hotplugd does. A DIMM sends two per block, and the
/// daemon's work for each, done while the kernel adds, is CPU taken from the add (in a 1-vCPU
/// guest, the add is slower by it).
///
/// While it holds the kernel's burst, the thread leaves the burst on the socket and looks every
/// `burstLook` at how much the socket holds (`chotplug_queued_bytes`), which costs the add
/// nothing but the look, until the socket holds no more than at the last look. It then receives
/// the lot and dates each datagram by the look that first saw it queued, so each event's receive
/// time is still known to a look. In a 1-vCPU guest onlining a 32 GiB DIMM (the kernel's auto-online
/// alone, 2.94 to 3.63 s), receiving every 20 ms took 1.13x the kernel alone's time and every
/// 100 ms 1.06x (medians of three guests each), where a listening socket that is never read
/// cost 0.97x and `udevadm monitor` waking at every datagram 1.28x; left on the socket, the
/// daemon's threads took 5 clock ticks of CPU during such an add of 5.9 s. Anything else that comes in
/// the meantime waits for the burst's end (at most `PendingEvents.longest`): an ACPI DIMM's add
/// holds the kernel's device hotplug lock throughout, so no CPU could be onlined before its end
/// anyway (a virtio-mem grow lets go of it between blocks: a CPU added during one waits for the
/// grow). The socket is received from early, whatever else holds, once it is half full, so that
/// it never overruns.
///
/// While hotplugd onlines memory itself (userspace mode), the thread wakes at each datagram and
/// holds `online` events as above, and a memory `add` for `PendingEvents.addQuiet`: an `add` is
/// what hotplugd writes for, and goes on once the kernel has sent nothing for that long, that is
/// once the add is over. The kernel sends a block's `add` from inside the add, holding the device
/// hotplug lock (a virtio-mem device adds four blocks at a time, an ACPI DIMM all of its blocks),
/// and a sysfs write that finds that lock held does not wait for it: it sleeps 5 ms, 12 to 16 ms
/// at HZ=250, and starts again (`lock_device_hotplug_sysfs`). Handed on at once, the first write
/// of each virtio-mem batch slept so, while the adds it had waited for took 1 ms (kernel traces
/// of a 4 GiB grow in a 1-vCPU guest). Left on the socket while the daemon's core writes,
/// instead, the `online` events of those writes cost a virtio-mem grow more than the wake-ups
/// they save (1 vCPU, four guests each: 0.98 s against 0.80 s): its `add` events come between
/// the writes, and each then waited for the core to go idle.
public final class UdevMonitor: Sendable {
    public struct Options: Sendable {
        public var source: MonitorSource
        public var receiveBufferBytes: Int
        public init(source: MonitorSource, receiveBufferBytes: Int) {
            self.source = source
            self.receiveBufferBytes = receiveBufferBytes
        }
    }

    /// While a burst is left on the socket, how much it holds is looked at this often.
    static let burstLook: Duration = .milliseconds(100)
    /// While only `online` events are held, whether the burst has gone quiet is looked at this often.
    static let quietLook: Duration = .milliseconds(20)

    private let stopFD: Int32
    private let thread: pthread_t
    private let holding: Holding

    /// Starts the monitor thread. Its first message is `.ready` or `.failed`.
    public init(options: Options, handler: @escaping @Sendable (MonitorMessage) -> Void) throws(SysfsError) {
        let stopFD = chotplug_eventfd()
        guard stopFD >= 0 else { throw SysfsError(path: "eventfd", operation: "create", errno: .init(rawValue: errno)) }
        self.stopFD = stopFD
        holding = Holding()
        let context = ThreadContext(options: options, stopFD: stopFD, holding: holding, handler: handler)
        var thread = pthread_t()
        let box = Unmanaged.passRetained(context).toOpaque()
        let result = pthread_create(
            &thread, nil,
            { argument in
                let context = Unmanaged<ThreadContext>.fromOpaque(argument!).takeRetainedValue()
                context.run()
                return nil
            }, box)
        guard result == 0 else {
            Unmanaged<ThreadContext>.fromOpaque(box).release()
            close(stopFD)
            throw SysfsError(path: "monitor thread", operation: "create", errno: .init(rawValue: result))
        }
        self.thread = thread
    }

    /// Which memory events are held until the kernel has stopped sending (see above).
    public func holdMemoryBursts(_ holding: MemoryBurstHolding) {
        self.holding.mode.store(holding.rawValue, ordering: .relaxed)
    }

    /// Stops the thread and waits for it; libudev's objects are freed on it.
    public func stop() {
        var one: UInt64 = 1
        _ = write(stopFD, &one, 8)
        pthread_join(thread, nil)
        close(stopFD)
    }

    /// udevd's control socket: something listens on it while udevd runs (udevd, or systemd for it).
    public static let udevControl = "/run/udev/control"
    /// The kernel's table of this network namespace's Unix sockets.
    public static let unixSocketTable = "/proc/net/unix"

    /// Whether udevd runs here: a socket listens at its control socket's path. The file alone does
    /// not say so: a udevd that was stopped or died leaves it behind, and `auto` taking it for a
    /// running udevd would listen for events that nobody sends. The kernel's table of Unix sockets
    /// is read rather than the socket connected to, which udevd would log as a bad message. Without
    /// the table, the file decides.
    public static func udevdRuns(runPath: String = udevControl, table: String = unixSocketTable) -> Bool {
        guard access(runPath, F_OK) == 0 else { return false }
        guard let text = try? TextFile.read(table, limit: 1 << 22) else { return true }
        return listens(at: runPath, unixSocketTable: text)
    }

    /// Whether `table` (the text of /proc/net/unix) has a listening socket bound to `path`.
    /// A row: `Num RefCount Protocol Flags Type St Inode Path`, Flags in hex, __SO_ACCEPTCON
    /// (0x10000) set on a listening socket.
    public static func listens(at path: String, unixSocketTable table: String) -> Bool {
        table.split(separator: "\n").dropFirst().contains { row in
            let fields = row.split(separator: " ", maxSplits: 7, omittingEmptySubsequences: true)
            guard fields.count == 8, let flags = UInt32(fields[3], radix: 16) else { return false }
            return flags & 0x1_0000 != 0 && fields[7] == path[...]
        }
    }

    /// `auto` means udev when udevd runs, else the kernel.
    public static func resolve(
        _ source: MonitorSource, runPath: String = udevControl, table: String = unixSocketTable
    ) -> MonitorSource {
        guard source == .auto else { return source }
        return udevdRuns(runPath: runPath, table: table) ? .udev : .kernel
    }
}

/// Shared by the monitor and its thread.
private final class Holding: Sendable {
    let mode = Atomic<UInt8>(MemoryBurstHolding.none.rawValue)

    var current: MemoryBurstHolding { MemoryBurstHolding(rawValue: mode.load(ordering: .relaxed)) ?? .none }
}

/// Everything the monitor thread owns. Created on the caller's thread, used only on the monitor thread.
private final class ThreadContext: @unchecked Sendable {
    let options: UdevMonitor.Options
    let stopFD: Int32
    let holding: Holding
    let handler: @Sendable (MonitorMessage) -> Void
    /// One datagram received at a time; one byte more than any valid one, so that a longer one shows.
    var buffer = [UInt8](repeating: 0, count: UeventDatagram.maxLength + 1)

    init(
        options: UdevMonitor.Options, stopFD: Int32, holding: Holding,
        handler: @escaping @Sendable (MonitorMessage) -> Void
    ) {
        self.options = options
        self.stopFD = stopFD
        self.holding = holding
        self.handler = handler
    }

    /// Sets the socket up through libudev, then receives on it until stopped or failed.
    ///
    /// What this relies on in libudev (systemd's src/libsystemd/sd-device/device-monitor.c):
    /// the socket is NETLINK_KOBJECT_UEVENT, SOCK_NONBLOCK and SOCK_CLOEXEC; enabling receiving
    /// attaches the subsystem filter, turns on SO_PASSCRED (so every datagram carries its
    /// sender's credentials) and binds to the group; `udev_monitor_get_fd` is that socket itself;
    /// and libudev reads from it only when asked to receive a device, which this never does.
    func run() {
        let schedulingRefused = ThreadScheduling.yieldToKernelWork()
        guard let udev = udev_new() else { return handler(.failed("udev_new failed: \(errnoText(errno))")) }
        defer { udev_unref(udev) }
        let source = UdevMonitor.resolve(options.source)
        guard let monitor = udev_monitor_new_from_netlink(udev, source.rawValue) else {
            return handler(.failed("cannot open the \(source.rawValue) netlink monitor: \(errnoText(errno))"))
        }
        defer { udev_monitor_unref(monitor) }
        for subsystem in DeviceKind.allCases {
            let result = udev_monitor_filter_add_match_subsystem_devtype(monitor, subsystem.directoryName, nil)
            if result < 0 { return handler(.failed("cannot filter on subsystem \(subsystem): \(errnoText(-result))")) }
        }
        // libudev tries SO_RCVBUF, then SO_RCVBUFFORCE, which root may use past rmem_max; its
        // result is not needed: what the kernel granted is read back and reported in `.ready`.
        _ = udev_monitor_set_receive_buffer_size(monitor, Int32(clamping: options.receiveBufferBytes))
        let enabled = udev_monitor_enable_receiving(monitor)
        if enabled < 0 { return handler(.failed("cannot start receiving: \(errnoText(-enabled))")) }
        let fd = udev_monitor_get_fd(monitor)
        handler(
            .ready(source: source, receiveBufferBytes: Self.receiveBuffer(fd), schedulingRefused: schedulingRefused))
        loop(fd: fd, source: source)
    }

    /// Received and not handed on yet.
    private var pending = PendingEvents()

    /// Whether to wait for more before handing `pending` on (see `PendingEvents`).
    private var holdsBurst: Bool { holding.current != .none && pending.holdsBurst(at: .now) }

    private func keep(_ item: PendingEvents.Item, source: MonitorSource) {
        if pending.append(item, holding: holding.current) { handOn(source: source) }
    }

    /// Hands on what is pending, in the order received; a held datagram's fields are taken now,
    /// and one refused is reported in its place.
    private func handOn(source: MonitorSource) {
        guard let items = pending.take() else { return }
        var events: [RawUevent] = []
        events.reserveCapacity(items.count)
        for item in items {
            switch item {
            case .event(let event):
                events.append(event)
            case .datagram(let datagram, let receivedAt):
                do {
                    var event = try datagram.fields(source: source)
                    event.receivedAt = receivedAt
                    if let subsystem = event.subsystem, DeviceKind(rawValue: subsystem) == nil { continue }
                    events.append(event)
                } catch {
                    if !events.isEmpty { handler(.events(events)) }
                    events = []
                    handler(.refused("\(error)"))
                }
            }
        }
        if !events.isEmpty { handler(.events(events)) }
    }

    private func loop(fd: Int32, source: MonitorSource) {
        var fds = [
            pollfd(fd: fd, events: Int16(POLLIN), revents: 0), pollfd(fd: stopFD, events: Int16(POLLIN), revents: 0),
        ]
        while true {
            let holds = holdsBurst
            if holds && holding.current == .addsAndOnlines {
                switch lookAtQueuedBurst(fd: fd) {
                case .stop: return
                case .leave: continue
                case .receive: break
                }
            } else if holds {
                // The thread wakes at each datagram: an `add` hotplugd writes for goes on as soon as
                // the kernel has been quiet for `addQuiet`.
                let look = pending.holdsAdd ? PendingEvents.addQuiet : UdevMonitor.quietLook
                if poll(&fds, 2, Int32(look / .milliseconds(1))) < 0 && errno != EINTR {
                    return handler(.failed("poll failed: \(errnoText(errno))"))
                }
                if fds[1].revents != 0 { return }
            } else {
                handOn(source: source)
                let ready = poll(&fds, 2, -1)
                if ready < 0 {
                    if errno == EINTR { continue }
                    return handler(.failed("poll failed: \(errnoText(errno))"))
                }
                if fds[1].revents != 0 { return }
                // POLLIN; or POLLERR after an overrun, which the next receive reports as ENOBUFS; or
                // POLLNVAL, which it reports as EBADF. Either way the receive says what happened.
                guard fds[0].revents != 0 else { continue }
            }
            let start = pending.items.count
            let end = drain(fd: fd, source: source)
            pending.dateByLooks(itemsFrom: start)
            switch end {
            case .empty:
                if !holdsBurst { handOn(source: source) }
            case .shortOfMemory:
                // Not at once again: the kernel is short of memory, and a retry in a tight loop
                // would only add to it. The stop signal still ends the pause.
                var stop = pollfd(fd: stopFD, events: Int16(POLLIN), revents: 0)
                if poll(&stop, 1, Self.memoryPauseMilliseconds) > 0 { return }
            case .failed(let reason):
                return handler(.failed(reason))
            }
        }
    }

    /// What to do after a look at a burst left on the socket.
    private enum Look {
        case stop
        /// Leave it there and look again.
        case leave
        /// Receive what is queued.
        case receive
    }

    /// Waits a look with the burst left on the socket (see `UdevMonitor`), then sees how much the
    /// socket holds.
    private func lookAtQueuedBurst(fd: Int32) -> Look {
        var stop = pollfd(fd: stopFD, events: Int16(POLLIN), revents: 0)
        if poll(&stop, 1, Int32(UdevMonitor.burstLook / .milliseconds(1))) > 0 { return .stop }
        var queued: UInt32 = 0
        var limit: UInt32 = 0
        // A kernel without SO_MEMINFO (before 4.12): receive at every look instead.
        guard chotplug_queued_bytes(fd, &queued, &limit) == 0 else { return .receive }
        // One clock reading per look (see `drain`).
        let now = ContinuousClock.now
        _ = pending.noteQueued(bytes: Int(queued), at: now)
        if Int(queued) * 2 >= Int(limit) { return .receive }
        return pending.holdsBurst(at: now) ? .leave : .receive
    }

    /// How a drain ended.
    private enum DrainEnd {
        /// The socket is empty.
        case empty
        /// The kernel could not allocate memory for a receive.
        case shortOfMemory
        /// The socket cannot be received from any more; the thread stops.
        case failed(String)
    }

    /// The pause before receiving again after ENOMEM.
    static let memoryPauseMilliseconds: Int32 = 10

    /// Receives until the socket is empty, into `pending`.
    ///
    /// Each datagram is taken off the socket once, into `buffer`, checked there, and its fields
    /// taken from those bytes (`UeventDatagram.fields(source:)`); a refused one is reported with
    /// its reason. What the caller does not hold is handed on before a loss or a failure is said.
    private func drain(fd: Int32, source: MonitorSource) -> DrainEnd {
        // One reading of the clock for the drain, which takes far less than the look interval:
        // in a guest whose clock source is emulated (HPET under QEMU's TCG) each reading is a
        // trap, and a DIMM is 128 datagrams.
        let now = ContinuousClock.now
        let deferring = source == .kernel ? holding.current : .none
        while true {
            var sender = chotplug_sender()
            let length = buffer.withUnsafeMutableBytes {
                chotplug_receive_datagram(fd, $0.baseAddress, UInt($0.count), &sender)
            }
            if length < 0 {
                switch ReceiveFailure(errno: errno) {
                case .empty:
                    return .empty
                case .interrupted:
                    continue
                case .overrun:
                    // What is still queued is received after the report.
                    lost(source: source)
                    continue
                case .shortOfMemory:
                    lost(source: source)
                    return .shortOfMemory
                case .fatal(let reason):
                    handOn(source: source)
                    return .failed(reason)
                }
            }
            let received = min(length, buffer.count)
            let from = UeventDatagram.Sender(
                port: sender.port, groups: sender.groups, uid: sender.has_uid != 0 ? sender.uid : nil)
            // A kernel datagram of a burst being held is kept as it is (`MemoryBurstHolding.holds`):
            // a copy of its bytes, since the buffer is received into again; in kernel mode the one
            // that begins the burst too, so that all their fields are taken after it. (In
            // userspace mode an `add` is read as it comes, and so is the first datagram.)
            let beginsKernelBurst = deferring == .addsAndOnlines && pending.items.isEmpty
            if deferring != .none && (beginsKernelBurst || pending.holdsBurst(at: now))
                && buffer.withUnsafeBytes({ deferring.holds(UnsafeRawBufferPointer(rebasing: $0[..<received])) })
            {
                let copy = UeventDatagram(bytes: Array(buffer[..<received])[...], length: length, sender: from)
                keep(.datagram(copy, receivedAt: now), source: source)
                continue
            }
            let datagram = UeventDatagram(bytes: buffer[..<received], length: length, sender: from)
            var event: RawUevent
            do {
                event = try datagram.fields(source: source)
                event.receivedAt = now
            } catch {
                handOn(source: source)
                handler(.refused("\(error)"))
                continue
            }
            // libudev's socket filter (sd_device_monitor_filter_update) matches the subsystem by
            // the hash in libudev's header and passes every message without libudev's magic, so
            // kernel-group messages of every subsystem get through it; libudev then dropped the
            // others silently (passes_filter). So are they here: they are not about anything
            // hotplugd manages, and a busy machine sends many. A missing SUBSYSTEM is the
            // decoder's to reject.
            if let subsystem = event.subsystem, DeviceKind(rawValue: subsystem) == nil { continue }
            keep(.event(event), source: source)
        }
    }

    /// Hands on the events received so far, then the loss: the daemon rescans after them.
    private func lost(source: MonitorSource) {
        handOn(source: source)
        handler(.eventsLost)
    }

    private static func receiveBuffer(_ fd: Int32) -> Int {
        var size: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        return getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, &length) == 0 ? Int(size) : -1
    }
}

/// What a failed receive on the monitor socket means, by its errno.
enum ReceiveFailure: Equatable {
    /// EAGAIN: nothing queued.
    case empty
    /// EINTR: receive again.
    case interrupted
    /// ENOBUFS: the socket overran and the kernel dropped datagrams.
    case overrun
    /// ENOMEM: a transient allocation failure in the kernel. Whether a datagram went with it
    /// cannot be told (netlink takes a datagram off the queue before copying it out, and frees
    /// it whatever the copy gave), and a kernel short of memory may fail to build a uevent's
    /// message at all, which no listener hears of: so it counts as lost events, and the daemon
    /// rescans as after ENOBUFS rather than trust that nothing was lost.
    case shortOfMemory
    /// Anything else (EBADF, ENOTSOCK, EFAULT...) will not go away by receiving again: the
    /// thread stops rather than spin on it.
    case fatal(String)

    init(errno error: Int32) {
        switch error {
        case EAGAIN, EWOULDBLOCK: self = .empty
        case EINTR: self = .interrupted
        case ENOBUFS: self = .overrun
        case ENOMEM: self = .shortOfMemory
        default: self = .fatal("cannot receive uevents: \(errnoText(error))")
        }
    }
}

/// strerror(3) and the number, for log lines.
private func errnoText(_ error: Int32) -> String {
    "\(String(cString: strerror(error))) (errno \(error))"
}
