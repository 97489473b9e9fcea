import Glibc
import HotplugSystem
import Testing

@Suite struct LockedTests {
    /// Four threads contending for one lock lose no update. Under `make sanitize` this is also
    /// the check that the thread sanitizer sees the lock handed over: `Synchronization.Mutex`,
    /// contended so, reads there as a race.
    @Test func contendedUpdatesAreAllKept() {
        final class Shared: Sendable {
            let count = Locked(0)
        }
        let shared = Unmanaged.passRetained(Shared())
        defer { shared.release() }
        var threads: [pthread_t] = []
        for _ in 0..<4 {
            var thread = pthread_t()
            let created = pthread_create(
                &thread, nil,
                { argument in
                    let shared = Unmanaged<Shared>.fromOpaque(argument!).takeUnretainedValue()
                    for _ in 0..<20_000 { shared.count.withLock { $0 += 1 } }
                    return nil
                }, shared.toOpaque())
            #expect(created == 0)
            if created == 0 { threads.append(thread) }
        }
        for thread in threads { pthread_join(thread, nil) }
        #expect(shared.takeUnretainedValue().count.withLock { $0 } == threads.count * 20_000)
        #expect(threads.count == 4)
    }

    /// An error thrown by the body leaves the value as the body left it and the lock free.
    @Test func aThrowingBodyReleasesTheLock() {
        struct Refused: Error {}
        let value = Locked([1])
        #expect(throws: Refused.self) {
            try value.withLock { (values: inout [Int]) throws(Refused) in
                values.append(2)
                throw Refused()
            }
        }
        #expect(value.withLock { $0 } == [1, 2])
    }
}
