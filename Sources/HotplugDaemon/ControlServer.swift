import CHotplug
import Foundation
import Glibc
import HotplugCore
import HotplugSystem
import Logging

/// What the running daemon knows, for `hotplugd status` and `hotplugd monitor`: a Unix socket
/// in its runtime directory that only root can open (mode 0600 in a root-owned directory).
///
/// Messages are framed as varlink frames them (a JSON object, then a NUL byte), the convention
/// of systemd's own services: `{"method":"io.hotplugd.Status"}` is answered with
/// `{"parameters":{...}}`, the report `hotplugd status --json` prints; `{"method":
/// "io.hotplugd.Monitor","more":true}` with `{"parameters":{"changes":[...]},"continues":true}`
/// for every burst of device changes until the client goes. The status is taken on the core's
/// thread (`CoreQuery`), so it is the daemon's own: `blocked`, `failed`, `onlining`, intent.
public final class ControlServer: Sendable {
    public static let socketName = "control"
    static let statusMethod = "io.hotplugd.Status"
    static let monitorMethod = "io.hotplugd.Monitor"

    public let path: String
    private let listener: Int32
    private let stopFD: Int32
    private let subscribers = Subscribers()
    private let thread: DedicatedThread

    /// The clients of `hotplugd monitor`: the server's thread adds them, `broadcast` sends to them.
    final class Subscribers: Sendable {
        let fds = Locked<[Int32]>([])
    }

    /// Binds the socket (replacing one a crashed daemon left) and starts answering on a thread.
    public init(directory: String, queue: InputQueue, logger: Logger) throws(DaemonError) {
        path = "\(directory)/\(Self.socketName)"
        // Root's own directory (the unit's RuntimeDirectory=, or made here as systemd makes it).
        if mkdir(directory, 0o755) != 0 && errno != EEXIST {
            throw DaemonError.control("\(directory): \(String(cString: strerror(errno)))")
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw DaemonError.control("socket: \(String(cString: strerror(errno)))") }
        unlink(path)
        guard let bound = UnixSocketAddress.with(path, { bind(fd, $0, $1) }) else {
            close(fd)
            throw DaemonError.control("\(path): path too long for a socket")
        }
        guard bound == 0, chmod(path, 0o600) == 0, listen(fd, 16) == 0 else {
            let error = String(cString: strerror(errno))
            close(fd)
            throw DaemonError.control("\(path): \(error)")
        }
        listener = fd
        let stopFD = chotplug_eventfd()
        self.stopFD = stopFD
        let subscribers = subscribers
        thread = try DedicatedThread {
            Self.serve(listener: fd, stop: stopFD, queue: queue, subscribers: subscribers, logger: logger)
        }
    }

    /// Every device change of one burst, to each `hotplugd monitor`; one that cannot keep up is dropped.
    public func broadcast(_ changes: [DeviceChange]) {
        guard !changes.isEmpty, subscribers.fds.withLock({ !$0.isEmpty }) else { return }
        let message = Self.frame(["parameters": ["changes": changes.map(Self.json)], "continues": true])
        subscribers.fds.withLock { clients in
            clients.removeAll { fd in
                let sent = message.withUnsafeBytes {
                    send(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT | MSG_NOSIGNAL))
                }
                guard sent != message.count else { return false }
                close(fd)
                return true
            }
        }
    }

    /// Stops answering, ends every monitor, removes the socket.
    public func stop() {
        var one: UInt64 = 1
        _ = write(stopFD, &one, 8)  // An eventfd: the write cannot fail short of a bug.
        thread.join()
        subscribers.fds.withLock { clients in
            for fd in clients { close(fd) }
            clients = []
        }
        close(listener)
        close(stopFD)
        unlink(path)
    }

    private static func serve(
        listener: Int32, stop: Int32, queue: InputQueue, subscribers: Subscribers, logger: Logger
    ) {
        var fds = [
            pollfd(fd: listener, events: Int16(POLLIN), revents: 0),
            pollfd(fd: stop, events: Int16(POLLIN), revents: 0),
        ]
        while true {
            guard poll(&fds, 2, -1) >= 0 || errno == EINTR else { return }
            if fds[1].revents != 0 { return }
            guard fds[0].revents != 0 else { continue }
            let client = accept(listener, nil, nil)
            guard client >= 0 else { continue }
            _ = fcntl(client, F_SETFD, FD_CLOEXEC)  // A fresh descriptor: only EBADF could fail it.
            // A client that says nothing does not hold the others up for long.
            var limit = timeval(tv_sec: 2, tv_usec: 0)
            setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
            setsockopt(client, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
            var reader = FrameReader(fd: client)
            let method: String
            do {
                guard let named = try reader.next(limit: 65536)["method"] as? String else {
                    throw ControlClientError(reason: "no method")
                }
                method = named
            } catch {
                close(client)  // Not a request: nothing to answer.
                continue
            }
            switch method {
            case statusMethod:
                let reply = status(queue: queue)
                reply.withUnsafeBytes { _ = send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                close(client)
            case monitorMethod:
                let hello = frame(["parameters": ["changes": [Any]()], "continues": true])
                let sent = hello.withUnsafeBytes { send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                if sent == hello.count { subscribers.fds.withLock { $0.append(client) } } else { close(client) }
            default:
                let reply = frame(["error": "org.varlink.service.MethodNotFound", "parameters": ["method": method]])
                reply.withUnsafeBytes { _ = send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                close(client)
                logger.debug("control socket: unknown method", metadata: ["method": "\(method)"])
            }
        }
    }

    /// The status report, taken on the core's thread; an error reply if the core does not answer
    /// in 10 s or is stopping.
    private static func status(queue: InputQueue) -> [UInt8] {
        let answer = Locked<[UInt8]?>(nil)
        let done = DispatchSemaphore(value: 0)
        queue.ask(
            CoreQuery { driver in
                var report = StatusReport(devices: driver.core.status(), blockSizeBytes: driver.core.blockSizeBytes)
                if let sysfs = driver.sysfs as? Sysfs {
                    report.memoryOnlining = MemoryOnliningStatus(plan: driver.core.memoryOnlining, sysfs: sysfs)
                }
                report.source = "daemon"
                report.lastHotAdd = driver.core.lastHotAdd
                do {
                    let body = try report.json(pretty: false)
                    answer.withLock { $0 = Array(#"{"parameters":"#.utf8) + Array(body) + Array("}".utf8) + [0] }
                } catch {
                    answer.withLock {
                        $0 = frame(["error": "io.hotplugd.Failed", "parameters": ["reason": "\(error)"]])
                    }
                }
                done.signal()
            })
        // A stopping daemon answers no more queries: the wait ends with it, not after 10 s.
        for _ in 0..<100 {
            if done.wait(timeout: .now() + .milliseconds(100)) == .success, let reply = answer.withLock({ $0 }) {
                return reply
            }
            if queue.isStopped { break }
        }
        return frame(["error": "io.hotplugd.Busy", "parameters": ["reason": "the daemon did not answer"]])
    }

    static func json(_ change: DeviceChange) -> [String: Any] {
        var object: [String: Any] = ["device": change.device.name, "event": change.event.rawValue]
        if let zone = change.zone { object["zone"] = zone }
        if let node = change.node { object["node"] = node }
        return object
    }

    /// A JSON object and its NUL.
    static func frame(_ object: [String: Any]) -> [UInt8] {
        do {
            return Array(try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) + [0]
        } catch {
            return Array(#"{"error":"io.hotplugd.Failed"}"#.utf8) + [0]
        }
    }
}

/// Reads NUL-framed JSON objects off a connection, for both ends of the control socket.
struct FrameReader {
    let fd: Int32
    /// Bytes received after the last frame's NUL.
    private var pending: [UInt8] = []

    init(fd: Int32) { self.fd = fd }

    /// The next object; `limit` bounds a frame's size (a request), nil takes any (a status report).
    mutating func next(limit: Int? = nil) throws(ControlClientError) -> [String: Any] {
        var chunk = [UInt8](repeating: 0, count: 65536)
        var end = pending.firstIndex(of: 0)
        while end == nil {
            if let limit, pending.count > limit { throw ControlClientError(reason: "a frame over \(limit) bytes") }
            let count = read(fd, &chunk, chunk.count)
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { throw ControlClientError(reason: "the connection closed") }
            let start = pending.count
            pending += chunk[..<count]
            end = pending[start...].firstIndex(of: 0)
        }
        guard let end else { throw ControlClientError(reason: "no frame") }
        let bytes = Array(pending[..<end])
        pending.removeFirst(end + 1)
        do {
            guard let object = try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any] else {
                throw ControlClientError(reason: "not a JSON object")
            }
            return object
        } catch let error as ControlClientError {
            throw error
        } catch {
            throw ControlClientError(reason: "not JSON: \(error)")
        }
    }
}

/// The other end of `ControlServer`, for `hotplugd status` and `hotplugd monitor`.
public struct ControlClient: ~Copyable {
    private let fd: Int32
    private var reader: FrameReader

    /// Connects to the daemon's socket in `directory`; nil when no daemon answers there (no
    /// socket, or one a stopped daemon left), with the reason.
    public static func connect(directory: String) -> Result<ControlClient, ControlClientError> {
        let path = "\(directory)/\(ControlServer.socketName)"
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return .failure(.init(reason: "socket: \(String(cString: strerror(errno)))")) }
        guard let connected = UnixSocketAddress.with(path, { Glibc.connect(fd, $0, $1) }) else {
            close(fd)
            return .failure(.init(reason: "\(path): path too long for a socket"))
        }
        guard connected == 0 else {
            let error = errno
            close(fd)
            return .failure(.init(reason: "\(path): \(String(cString: strerror(error)))"))
        }
        return .success(ControlClient(fd: fd))
    }

    private init(fd: Int32) {
        self.fd = fd
        reader = FrameReader(fd: fd)
    }

    deinit { close(fd) }

    /// The running daemon's status report.
    public mutating func status() throws(ControlClientError) -> StatusReport {
        try send(["method": ControlServer.statusMethod])
        let reply = try receive()
        guard let parameters = reply["parameters"] else {
            throw ControlClientError(reason: "the daemon answered \(reply["error"] ?? "nothing")")
        }
        do {
            let decoder = JSONDecoder()
            decoder.keyDecodingStrategy = .convertFromSnakeCase
            return try decoder.decode(StatusReport.self, from: JSONSerialization.data(withJSONObject: parameters))
        } catch {
            throw ControlClientError(reason: "the daemon's report does not decode: \(error)")
        }
    }

    /// Follows device changes: `ready` is called once the daemon has taken the subscription (its
    /// first, empty reply), then `changes` with each burst until the daemon goes (returns) or the
    /// connection fails (throws).
    public mutating func monitor(
        ready: () -> Void, _ changes: ([[String: Any]]) -> Void
    ) throws(ControlClientError) {
        try send(["method": ControlServer.monitorMethod, "more": true])
        var subscribed = false
        while true {
            let reply: [String: Any]
            do {
                reply = try receive()
            } catch {
                return  // The daemon stopped: the connection closed.
            }
            guard let parameters = reply["parameters"] as? [String: Any] else {
                throw ControlClientError(reason: "the daemon answered \(reply["error"] ?? "nothing")")
            }
            if !subscribed {
                subscribed = true
                ready()
            }
            if let burst = parameters["changes"] as? [[String: Any]], !burst.isEmpty { changes(burst) }
        }
    }

    private func send(_ object: [String: Any]) throws(ControlClientError) {
        let message = ControlServer.frame(object)
        let sent = message.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        guard sent == message.count else {
            throw ControlClientError(reason: "send: \(String(cString: strerror(errno)))")
        }
    }

    private mutating func receive() throws(ControlClientError) -> [String: Any] {
        do {
            return try reader.next()
        } catch {
            throw ControlClientError(reason: "the daemon's answer: \(error)")
        }
    }
}

public struct ControlClientError: Error, CustomStringConvertible {
    public var reason: String
    public var description: String { reason }
}
