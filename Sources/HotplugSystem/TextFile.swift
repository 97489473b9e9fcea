import Glibc

import struct SystemPackage.Errno
import struct SystemPackage.FileDescriptor
import struct SystemPackage.FilePath

/// Whole small text files outside sysfs: the configuration, /proc/cmdline, and, through an
/// `OwnDirectory`, the daemon's own state.
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
        return try readAll(fd, limit: limit)
    }

    /// Reads one of hotplugd's own files, `name` in `directory`: never through a link
    /// (O_NOFOLLOW), never blocking on something planted in its place (O_NONBLOCK), and only a
    /// regular file. Errors are swift-system's `Errno` (ELOOP for a link, EINVAL for a non-file).
    static func readOwn(_ name: String, in directory: FileDescriptor, limit: Int) throws -> String {
        let fd = openat(directory.rawValue, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { throw Errno(rawValue: errno) }
        let file = FileDescriptor(rawValue: fd)
        defer { _ = Glibc.close(fd) }  // Read only: see `FileDescriptor.closeAfterUse`.
        try requireRegularFile(file)
        return String(decoding: try readAll(file, limit: limit), as: UTF8.self)
    }

    private static func readAll(_ fd: FileDescriptor, limit: Int) throws -> [UInt8] {
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

    /// Replaces `name` in `directory` atomically and durably, without trusting anything already
    /// in the directory.
    ///
    /// The new contents go to a file of a random name created exclusively (O_EXCL|O_NOFOLLOW|
    /// O_NONBLOCK: a planted link, FIFO or hard link is never opened, so nothing outside is
    /// truncated or chmod'ed and nothing blocks), which is checked to be a regular file, synced,
    /// renamed over the name, and the directory synced: after a power cut the file is the old one
    /// or the new one, whole. The mode is set explicitly: the service's `UMask=0077` must not hide
    /// a file that others (node_exporter, an operator's `hotplugd status`) read.
    static func write(_ text: String, to name: String, in directory: FileDescriptor, mode: mode_t) throws {
        guard !name.isEmpty, name != ".", name != "..", !name.contains("/") else { throw Errno.invalidArgument }
        var temporary = ""
        var fd: Int32 = -1
        for _ in 0..<16 {
            // Unpredictable enough that it cannot be planted in advance.
            temporary = ".\(name).\(String(UInt64.random(in: 0...UInt64.max), radix: 16))"
            fd = openat(
                directory.rawValue, temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, mode)
            if fd >= 0 || errno != EEXIST { break }
        }
        guard fd >= 0 else { throw Errno(rawValue: errno) }
        let file = FileDescriptor(rawValue: fd)
        do {
            try requireRegularFile(file)
            if fchmod(fd, mode) != 0 { throw Errno(rawValue: errno) }
            _ = try Array(text.utf8).withUnsafeBytes { try file.writeAll($0) }
            if fsync(fd) != 0 { throw Errno(rawValue: errno) }
        } catch {
            // The write already failed; that error is the one to report, and the file goes.
            _ = Glibc.close(fd)
            unlinkat(directory.rawValue, temporary, 0)
            throw error
        }
        // Closed once, whatever close says: a second close could hit another thread's new descriptor.
        guard Glibc.close(fd) == 0 else {
            let error = Errno(rawValue: errno)
            unlinkat(directory.rawValue, temporary, 0)
            throw error
        }
        guard renameat(directory.rawValue, temporary, directory.rawValue, name) == 0 else {
            let error = Errno(rawValue: errno)
            unlinkat(directory.rawValue, temporary, 0)
            throw error
        }
        if fsync(directory.rawValue) != 0 { throw Errno(rawValue: errno) }
    }

    static func requireRegularFile(_ fd: FileDescriptor) throws {
        var status = stat()
        guard fstat(fd.rawValue, &status) == 0 else { throw Errno(rawValue: errno) }
        guard status.st_mode & S_IFMT == S_IFREG else { throw Errno.invalidArgument }
    }
}
