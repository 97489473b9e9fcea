import CHotplug
import Glibc
import HotplugCore

/// Listens to cpu and memory uevents through libudev on a thread of its own.
///
/// libudev objects must be created, used and freed by one thread (libudev(3)), so that thread
/// owns the `udev` context and the monitor from start to end; it waits in poll(2) on the monitor
/// and an eventfd used to stop it, drains every queued event in one go, and passes them on as
/// `RawUevent` values.
public final class UdevMonitor: Sendable {
    public struct Options: Sendable {
        public var source: MonitorSource
        public var receiveBufferBytes: Int
        public init(source: MonitorSource, receiveBufferBytes: Int) {
            self.source = source
            self.receiveBufferBytes = receiveBufferBytes
        }
    }

    /// The largest burst handed on at once; the rest follows in the next message.
    static let maxBatch = 4096

    private let stopFD: Int32
    private let thread: pthread_t

    /// Starts the monitor thread. Its first message is `.ready` or `.failed`.
    public init(options: Options, handler: @escaping @Sendable (MonitorMessage) -> Void) throws(SysfsError) {
        let stopFD = chotplug_eventfd()
        guard stopFD >= 0 else { throw SysfsError(path: "eventfd", operation: "create", errno: .init(rawValue: errno)) }
        self.stopFD = stopFD
        let context = ThreadContext(options: options, stopFD: stopFD, handler: handler)
        var thread = pthread_t()
        let box = Unmanaged.passRetained(context).toOpaque()
        let result = pthread_create(&thread, nil, { argument in
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

    /// Stops the thread and waits for it; libudev's objects are freed on it.
    public func stop() {
        var one: UInt64 = 1
        _ = write(stopFD, &one, 8)
        pthread_join(thread, nil)
        close(stopFD)
    }

    /// `auto` means udev when udevd runs (its control socket exists), else the kernel.
    public static func resolve(_ source: MonitorSource, runPath: String = "/run/udev/control") -> MonitorSource {
        guard source == .auto else { return source }
        return access(runPath, F_OK) == 0 ? .udev : .kernel
    }
}

/// Everything the monitor thread owns. Created on the caller's thread, used only on the monitor thread.
private final class ThreadContext: @unchecked Sendable {
    let options: UdevMonitor.Options
    let stopFD: Int32
    let handler: @Sendable (MonitorMessage) -> Void
    /// One datagram peeked at a time; one byte more than any valid one, so that a longer one shows.
    var buffer = [UInt8](repeating: 0, count: UeventDatagram.maxLength + 1)

    init(options: UdevMonitor.Options, stopFD: Int32, handler: @escaping @Sendable (MonitorMessage) -> Void) {
        self.options = options
        self.stopFD = stopFD
        self.handler = handler
    }

    func run() {
        guard let udev = udev_new() else { return handler(.failed("udev_new failed: errno \(errno)")) }
        defer { udev_unref(udev) }
        let source = UdevMonitor.resolve(options.source)
        guard let monitor = udev_monitor_new_from_netlink(udev, source.rawValue) else {
            return handler(.failed("cannot open the \(source.rawValue) netlink monitor: errno \(errno)"))
        }
        defer { udev_monitor_unref(monitor) }
        for subsystem in DeviceKind.allCases {
            let result = udev_monitor_filter_add_match_subsystem_devtype(monitor, subsystem.directoryName, nil)
            if result < 0 { return handler(.failed("cannot filter on subsystem \(subsystem): errno \(-result)")) }
        }
        // libudev tries SO_RCVBUF, then SO_RCVBUFFORCE, which root may use past rmem_max.
        _ = udev_monitor_set_receive_buffer_size(monitor, Int32(clamping: options.receiveBufferBytes))
        let enabled = udev_monitor_enable_receiving(monitor)
        if enabled < 0 { return handler(.failed("cannot start receiving: errno \(-enabled)")) }
        let fd = udev_monitor_get_fd(monitor)
        handler(.ready(source: source, receiveBufferBytes: Self.receiveBuffer(fd)))
        loop(monitor: monitor, fd: fd, source: source)
    }

    private func loop(monitor: OpaquePointer, fd: Int32, source: MonitorSource) {
        var fds = [pollfd(fd: fd, events: Int16(POLLIN), revents: 0), pollfd(fd: stopFD, events: Int16(POLLIN), revents: 0)]
        while true {
            let ready = poll(&fds, 2, -1)
            if ready < 0 {
                if errno == EINTR { continue }
                return handler(.failed("poll failed: errno \(errno)"))
            }
            if fds[1].revents != 0 { return }
            if fds[0].revents & Int16(POLLERR | POLLHUP | POLLNVAL) != 0 && fds[0].revents & Int16(POLLIN) == 0 {
                // An overrun is reported as POLLERR; the next receive reports ENOBUFS.
                drain(monitor, fd: fd, source: source)
                continue
            }
            drain(monitor, fd: fd, source: source)
        }
    }

    /// Receives until the socket is empty, handing on events in batches.
    ///
    /// Each datagram is peeked at and checked (`UeventDatagram.check`) before libudev takes it:
    /// a refused one is taken off the socket unread and reported. libudev then applies its own
    /// checks and the subsystem filter; a message it drops comes back as EAGAIN, like an empty
    /// socket, which is why the peek, not libudev, says when the socket is empty.
    private func drain(_ monitor: OpaquePointer, fd: Int32, source: MonitorSource) {
        var batch: [RawUevent] = []
        defer { if !batch.isEmpty { handler(.events(batch)) } }
        while true {
            var sender = chotplug_sender()
            let length = buffer.withUnsafeMutableBytes { chotplug_peek_datagram(fd, $0.baseAddress, UInt($0.count), &sender) }
            if length < 0 {
                let error = errno
                if error == EINTR { continue }
                if error == ENOBUFS {
                    if !batch.isEmpty { handler(.events(batch)) }
                    batch = []
                    handler(.eventsLost)
                    continue
                }
                return  // EAGAIN: the socket is empty.
            }
            let datagram = UeventDatagram(
                bytes: buffer[..<min(length, buffer.count)], length: length,
                sender: .init(port: sender.port, groups: sender.groups, uid: sender.has_uid != 0 ? sender.uid : nil))
            do {
                try datagram.check(source: source)
            } catch {
                _ = recv(fd, nil, 0, Int32(MSG_DONTWAIT))
                handler(.refused("\(error)"))
                continue
            }
            errno = 0
            guard let device = udev_monitor_receive_device(monitor) else {
                let error = errno
                if error != 0 && error != EAGAIN && error != EWOULDBLOCK {
                    handler(.refused("libudev refused it: \(String(cString: strerror(error)))"))
                }
                continue
            }
            batch.append(Self.rawEvent(device))
            udev_device_unref(device)
            if batch.count >= UdevMonitor.maxBatch {
                handler(.events(batch))
                batch = []
            }
        }
    }

    /// The four fields the decoder needs, as the message carried them. Nothing is read from sysfs
    /// here, and no other property is copied: nothing downstream uses them, and the datagram check
    /// has already bounded every one.
    private static func rawEvent(_ device: OpaquePointer) -> RawUevent {
        func property(_ key: String) -> String? { udev_device_get_property_value(device, key).map { String(cString: $0) } }
        return RawUevent(
            action: property("ACTION"), devpath: property("DEVPATH"), subsystem: property("SUBSYSTEM"),
            seqnum: property("SEQNUM"))
    }

    private static func receiveBuffer(_ fd: Int32) -> Int {
        var size: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        return getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, &length) == 0 ? Int(size) : -1
    }
}
