import Glibc

import struct SystemPackage.Errno
import struct SystemPackage.FileDescriptor
import struct SystemPackage.FilePath
import struct SystemPackage.FilePermissions

/// Whole small text files outside sysfs: the configuration, /proc/cmdline, the daemon's own state.
public enum TextFile {
    /// Reads a file of at most `limit` bytes; a longer one is refused rather than cut.
    /// Errors are swift-system's `Errno`.
    public static func read(_ path: String, limit: Int = 1 << 20) throws -> String {
        String(decoding: try readBytes(path, limit: limit), as: UTF8.self)
    }

    /// The file's bytes, at most `limit` of them (EFBIG past that).
    public static func readBytes(_ path: String, limit: Int = 1 << 20) throws -> [UInt8] {
        let fd = try FileDescriptor.open(FilePath(path), .readOnly, options: [.closeOnExec])
        defer { _ = Glibc.close(fd.rawValue) }  // Read only: see `FileDescriptor.closeAfterUse`.
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = try chunk.withUnsafeMutableBytes { try fd.read(into: $0) }
            if count == 0 { break }
            bytes += chunk[..<count]
            if bytes.count > limit { throw Errno.fileTooLarge }
        }
        return bytes
    }

    /// Replaces a file atomically: write a temporary file beside it, then rename it over.
    /// The mode is set explicitly: the service's `UMask=0077` must not hide a file that others
    /// (node_exporter, an operator's `hotplugd status`) read.
    public static func write(_ path: String, _ text: String, mode: mode_t = 0o644) throws {
        let temporary = "\(path).tmp"
        let fd = try FileDescriptor.open(
            FilePath(temporary), .writeOnly, options: [.create, .truncate, .closeOnExec, .noFollow],
            permissions: FilePermissions(rawValue: mode))
        do {
            if fchmod(fd.rawValue, mode) != 0 { throw Errno(rawValue: errno) }
            _ = try Array(text.utf8).withUnsafeBytes { try fd.writeAll($0) }
            try fd.close()
        } catch {
            // The write already failed; that error is the one to report, and the file goes.
            _ = Glibc.close(fd.rawValue)
            unlink(temporary)
            throw error
        }
        guard rename(temporary, path) == 0 else {
            let error = Errno(rawValue: errno)
            unlink(temporary)
            throw error
        }
    }
}
