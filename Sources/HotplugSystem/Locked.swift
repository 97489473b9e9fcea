import Glibc

/// A value shared between threads, behind a pthread mutex.
///
/// Used instead of `Synchronization.Mutex` so that the thread sanitizer sees every hand-over of
/// the lock. On Linux `Mutex` is a priority-inheritance futex: a contended unlock gives the lock
/// to its waiter inside the kernel (FUTEX_UNLOCK_PI), with no atomic in user space that the
/// sanitizer could pair, so two accesses under the same lock read as a race whenever it was
/// contended (a loaded machine makes that likely, and `make sanitize` then fails on nothing).
/// The sanitizer intercepts `pthread_mutex_lock` and `pthread_mutex_unlock`. hotplugd has no
/// thread whose priority an inversion could hurt, so priority inheritance is not missed.
public final class Locked<Value> {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private var value: Value

    public init(_ value: Value) {
        self.value = value
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        let initialized = pthread_mutex_init(mutex, nil)
        precondition(initialized == 0, "pthread_mutex_init: errno \(initialized)")
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deinitialize(count: 1)
        mutex.deallocate()
    }

    /// Runs `body` with the value, holding the lock.
    public func withLock<R, E: Error>(_ body: (inout Value) throws(E) -> R) throws(E) -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value)
    }
}

/// Shared between threads only when what it holds may be.
extension Locked: @unchecked Sendable where Value: Sendable {}
