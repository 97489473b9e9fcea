import Glibc
import HotplugCore
import HotplugSystem

import struct SystemPackage.Errno

/// Keeps the kernel-zone memory present at boot across daemon restarts.
///
/// The auto-movable ratio is measured against memory the kernel had at boot, which userspace
/// cannot read back once hot-added memory has gone into kernel zones. hotplugd counts it at its
/// first start after boot and stores it in its runtime directory, tagged with the boot id so a
/// file from an earlier boot is never taken for this one.
public struct BootBaseline: Sendable {
    /// The runtime directory, held for the process.
    public let files: OwnDirectory
    /// This boot's id; nil when it cannot be read, and then nothing is kept or loaded: a file
    /// whose boot cannot be told apart from this one's would be a guess.
    public let bootID: String?

    public init(directory: OwnDirectory, bootIDPath: String = "/proc/sys/kernel/random/boot_id") {
        self.files = directory
        do {
            self.bootID = try TextFile.read(bootIDPath).trimmingWhitespace().description
        } catch {
            self.bootID = nil
        }
    }

    public var directory: String { files.path }
    public var path: String { files.path(of: "boot-kernel-pages") }

    /// The stored figure for this boot; nil when there is none (no file, another boot's, no boot id).
    /// A file that cannot be read or parsed is an error: the caller says so and counts again.
    public func load() throws -> [Int: Int]? {
        guard let bootID else { return nil }
        let text: String
        do {
            text = try files.read("boot-kernel-pages")
        } catch let error as Errno where error == .noSuchFileOrDirectory {
            return nil
        }
        var lines = text.split(separator: "\n")
        guard lines.first == "boot \(bootID)" else { return nil }
        lines.removeFirst()
        var pages: [Int: Int] = [:]
        for line in lines {
            let fields = line.split(separator: " ")
            guard fields.count == 3, fields[0] == "node", let node = Int(fields[1]), let count = Int(fields[2]) else {
                throw Errno.invalidArgument
            }
            pages[node] = count
        }
        return pages
    }

    public func store(_ pages: [Int: Int]) throws {
        guard let bootID else { throw Errno.noSuchFileOrDirectory }
        // systemd makes the directory (RuntimeDirectory=); elsewhere hotplugd does.
        let body = pages.keys.sorted().map { "node \($0) \(pages[$0]!)" }.joined(separator: "\n")
        try files.write("boot-kernel-pages", "boot \(bootID)\n\(body)\n")
    }
}
