import Glibc
import Testing

@testable import HotplugSystem

/// What the monitor does when a receive fails: only an empty socket ends a drain quietly.
@Suite struct ReceiveFailureTests {
    @Test func eachErrnoHasItsMeaning() {
        #expect(ReceiveFailure(errno: EAGAIN) == .empty)
        #expect(ReceiveFailure(errno: EWOULDBLOCK) == .empty)
        #expect(ReceiveFailure(errno: EINTR) == .interrupted)
        #expect(ReceiveFailure(errno: ENOBUFS) == .overrun)
        #expect(ReceiveFailure(errno: ENOMEM) == .shortOfMemory)
    }

    /// A persistent error stops the thread, with its text, instead of being taken for an empty socket.
    @Test(arguments: [EBADF, ENOTSOCK, EFAULT, EINVAL])
    func anyOtherErrnoIsFatal(error: Int32) {
        let text = "\(String(cString: strerror(error))) (errno \(error))"
        #expect(ReceiveFailure(errno: error) == .fatal("cannot receive uevents: \(text)"))
    }
}
