import Glibc

/// A POSIX thread for work that blocks (sysfs writes wait on the kernel's device hotplug lock,
/// retries sleep): kept off Swift's cooperative pool, whose few threads the rest of the daemon
/// needs to stay responsive.
final class DedicatedThread: Sendable {
    private let thread: pthread_t

    init(_ body: @escaping @Sendable () -> Void) throws(DaemonError) {
        final class Box: @unchecked Sendable {
            let body: @Sendable () -> Void
            init(_ body: @escaping @Sendable () -> Void) { self.body = body }
        }
        let box = Unmanaged.passRetained(Box(body)).toOpaque()
        var thread = pthread_t()
        let result = pthread_create(
            &thread, nil,
            { argument in
                Unmanaged<Box>.fromOpaque(argument!).takeRetainedValue().body()
                return nil
            }, box)
        guard result == 0 else {
            Unmanaged<Box>.fromOpaque(box).release()
            throw DaemonError.thread("pthread_create: errno \(result)")
        }
        self.thread = thread
    }

    /// Waits for the thread to end.
    func join() {
        pthread_join(thread, nil)
    }

    /// Lets the thread end on its own, its resources freed then, with nobody waiting for it.
    func detach() {
        pthread_detach(thread)
    }
}

extension DedicatedThread {
    /// A thread nobody joins: it ends with its body.
    static func detached(_ body: @escaping @Sendable () -> Void) throws(DaemonError) {
        let thread = try DedicatedThread(body)
        pthread_detach(thread.thread)
    }
}
