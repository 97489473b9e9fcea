import Foundation
import Glibc

/// A memory block's `state` file in a fake tree replaced by a FIFO that the test serves: a
/// process reading it gets `value`; a process writing it blocks in open(2) until the test
/// releases it, so the test can act (a signal, a kill) while the write is held at that point.
final class HeldStateFile {
    let path: String
    /// What a reader gets; a released write sets it.
    private(set) var value: String
    /// What each released write wrote, in order; a write that opened before the reader was gone
    /// comes in the same entry.
    private(set) var written: [String] = []

    init(_ path: String, value: String) throws {
        self.path = path
        self.value = value
        guard unlink(path) == 0, mkfifo(path, 0o644) == 0 else { throw POSIXError(.init(rawValue: errno)!) }
        // A reader gone before the test writes must be EPIPE here, not the end of the test process.
        signal(SIGPIPE, SIG_IGN)
    }

    /// Serves the reader waiting now, if any; returns whether a writer is held instead (a thread
    /// of `pid` waits in the FIFO's open, and no reader is there to be served, so it is a writer).
    func serve(_ pid: pid_t) -> Bool {
        guard Self.waitsForPartner(pid) else { return false }
        return !serveOneReader()
    }

    /// Lets the held writer through and takes what it writes as the new value.
    func releaseWriter() throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { throw POSIXError(.init(rawValue: errno)!) }
        defer { close(fd) }
        // The writer was counted before it waited: reading blocks until it writes and closes.
        _ = fcntl(fd, F_SETFL, 0)
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 256)
        while true {
            let count = read(fd, &chunk, chunk.count)
            if count <= 0 { break }
            bytes += chunk[..<count]
        }
        // A writer that opened while this end was still open (the next write, right after this
        // one) did not wait for a partner and writes now: take its bytes too before closing, or
        // they would go with the FIFO. Quiet for 30 ms: nobody else is writing.
        _ = fcntl(fd, F_SETFL, O_NONBLOCK)
        var quiet = 0
        while quiet < 3 {
            usleep(10_000)
            let count = read(fd, &chunk, chunk.count)
            if count > 0 {
                bytes += chunk[..<count]
                quiet = 0
            } else {
                quiet += 1
            }
        }
        value = String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        written.append(value)
    }

    private func serveOneReader() -> Bool {
        // Succeeds only when a reader is there (ENXIO otherwise), and lets a waiting one through.
        let fd = open(path, O_WRONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        let line = Array("\(value)\n".utf8)
        _ = line.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        // Closed once read: the reader, past its open by then, gets one line and the end of file,
        // and is not taken for a reader still waiting at the next look.
        let deadline = ContinuousClock.now + .seconds(5)
        var unread: Int32 = 1
        while ioctl(fd, UInt(FIONREAD), &unread) == 0, unread > 0, ContinuousClock.now < deadline {
            usleep(1000)
        }
        return true
    }

    /// Whether a thread of `pid` is blocked opening a FIFO.
    static func waitsForPartner(_ pid: pid_t) -> Bool {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
        return tasks.contains { task in
            (try? String(contentsOfFile: "/proc/\(pid)/task/\(task)/wchan", encoding: .utf8)) == "wait_for_partner"
        }
    }
}

/// Waits on the calling thread, not the cooperative pool, which the other tests may keep busy.
func waitUntil(timeout: Duration = .seconds(30), _ condition: () -> Bool) throws {
    let deadline = ContinuousClock.now + timeout
    while !condition() {
        guard ContinuousClock.now < deadline else { throw RealKernel.TimedOut() }
        usleep(5000)
    }
}
