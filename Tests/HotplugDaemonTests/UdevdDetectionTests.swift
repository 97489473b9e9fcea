import Foundation
import Glibc
import HotplugCore
import Testing

@testable import HotplugSystem

/// `source = "auto"` listens to udevd only while something listens on its control socket, not
/// while a socket file that a stopped udevd left behind is there.
@Suite struct UdevdDetectionTests {
    /// Rows as /proc/net/unix shows them: a listening SOCK_SEQPACKET socket (flags 00010000, type
    /// 0005, state 01), a connected one at the same path, and one listening elsewhere.
    static let table = """
        Num       RefCount Protocol Flags    Type St Inode Path
        0000000000000000: 00000002 00000000 00010000 0005 01 20491 /run/udev/control
        0000000000000000: 00000003 00000000 00000000 0005 03 20492 /run/udev/control
        0000000000000000: 00000002 00000000 00010000 0001 01 20493 /run/other socket
        0000000000000000: 00000002 00000000 00010000 0001 01 20494 @abstract
        """

    @Test func aListeningRowAtThePathIsARunningUdevd() {
        #expect(UdevMonitor.listens(at: "/run/udev/control", unixSocketTable: Self.table))
        #expect(UdevMonitor.listens(at: "/run/other socket", unixSocketTable: Self.table))
    }

    @Test func aConnectedRowOrAnotherPathIsNot() {
        let connectedOnly = Self.table.split(separator: "\n").enumerated()
            .filter { $0.offset != 1 }.map(\.element).joined(separator: "\n")
        #expect(!UdevMonitor.listens(at: "/run/udev/control", unixSocketTable: connectedOnly))
        #expect(!UdevMonitor.listens(at: "/run/udev/contro", unixSocketTable: Self.table))
        #expect(!UdevMonitor.listens(at: "/run/udev/control", unixSocketTable: "Num RefCount Protocol Flags"))
    }

    /// A real socket in a temporary directory, seen through this machine's /proc/net/unix: while
    /// it listens `auto` means udev; once it is closed, its file left behind, the kernel.
    @Test func aSocketLeftBehindByAStoppedListenerIsNotUdevd() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("udevd-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("control").path
        #expect(!UdevMonitor.udevdRuns(runPath: path))

        let fd = socket(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        try #require(fd >= 0)
        let bound = UnixSocketAddress.with(path) { bind(fd, $0, $1) }
        try #require(bound == 0 && listen(fd, 1) == 0)
        #expect(UdevMonitor.udevdRuns(runPath: path))
        #expect(UdevMonitor.resolve(.auto, runPath: path) == .udev)

        close(fd)
        #expect(access(path, F_OK) == 0)
        #expect(!UdevMonitor.udevdRuns(runPath: path))
        #expect(UdevMonitor.resolve(.auto, runPath: path) == .kernel)
        // Without the kernel's table, the file decides.
        #expect(UdevMonitor.udevdRuns(runPath: path, table: directory.appendingPathComponent("none").path))
        #expect(UdevMonitor.resolve(.udev, runPath: path) == .udev)
    }
}
