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
    public let directory: String
    public let bootID: String

    public init(directory: String, bootIDPath: String = "/proc/sys/kernel/random/boot_id") {
        self.directory = directory
        self.bootID = (try? TextFile.read(bootIDPath).trimmingWhitespace().description) ?? "unknown"
    }

    var path: String { "\(directory)/boot-kernel-pages" }

    /// The stored figure for this boot, or nil.
    public func load() -> [Int: Int]? {
        guard let text = try? TextFile.read(path) else { return nil }
        var lines = text.split(separator: "\n")
        guard lines.first == "boot \(bootID)" else { return nil }
        lines.removeFirst()
        var pages: [Int: Int] = [:]
        for line in lines {
            let fields = line.split(separator: " ")
            guard fields.count == 3, fields[0] == "node", let node = Int(fields[1]), let count = Int(fields[2]) else {
                return nil
            }
            pages[node] = count
        }
        return pages
    }

    public func store(_ pages: [Int: Int]) throws {
        // systemd makes the directory (RuntimeDirectory=); elsewhere hotplugd does.
        if mkdir(directory, 0o755) != 0 && errno != EEXIST { throw Errno(rawValue: errno) }
        let body = pages.keys.sorted().map { "node \($0) \(pages[$0]!)" }.joined(separator: "\n")
        try TextFile.write(path, "boot \(bootID)\n\(body)\n")
    }
}
