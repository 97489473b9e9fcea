import Glibc

import struct SystemPackage.Errno
import struct SystemPackage.FileDescriptor

/// A directory that holds hotplugd's own files (the state directory, the runtime directory, the
/// metrics file's), opened once and held for the life of the process.
///
/// Every file in it is created, read, renamed and removed relative to that one descriptor, never
/// by path: a directory renamed, or replaced by a link, after the first use is not followed. The
/// directory is opened at its first use, without following a link (O_DIRECTORY|O_NOFOLLOW); an
/// open that fails is tried again at the next use, so a directory made after the start is found.
public final class OwnDirectory: Sendable {
    public let path: String
    /// The descriptor once opened; closed with the object.
    private let descriptor = Locked<Int32?>(nil)

    public init(_ path: String) {
        self.path = path
    }

    deinit {
        // Nothing was written through it since its last fsync; a close error has nothing to report.
        if let fd = descriptor.withLock({ $0 }) { _ = Glibc.close(fd) }
    }

    /// The path of `name` in the directory, for messages.
    public func path(of name: String) -> String { "\(path)/\(name)" }

    /// The directory's descriptor; with `create`, the directory is made first (mode 0755) if it
    /// is missing: systemd makes it under its unit, anything else runs without.
    func open(create: Bool) throws -> FileDescriptor {
        let fd: Int32 = try descriptor.withLock { held in
            if let held { return held }
            if create && mkdir(path, 0o755) != 0 && errno != EEXIST { throw Errno(rawValue: errno) }
            let fd = Glibc.open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            guard fd >= 0 else { throw Errno(rawValue: errno) }
            held = fd
            return fd
        }
        return FileDescriptor(rawValue: fd)
    }

    /// Replaces `name` atomically and durably (see `TextFile.write(_:to:in:mode:)`); with
    /// `create`, makes the directory if it is missing.
    public func write(_ name: String, _ text: String, mode: mode_t = 0o644, create: Bool = true) throws {
        try TextFile.write(text, to: name, in: open(create: create), mode: mode)
    }

    /// Reads `name` without following a link or blocking on a FIFO, and only a regular file
    /// (see `TextFile.readOwn`). A missing directory is ENOENT, as a missing file.
    public func read(_ name: String, limit: Int = 1 << 20) throws -> String {
        try TextFile.readOwn(name, in: open(create: false), limit: limit)
    }

    /// Removes `name`; a name that is not there, or a directory that is not, is no error.
    public func remove(_ name: String) throws {
        let directory: FileDescriptor
        do {
            directory = try open(create: false)
        } catch let error as Errno where error == .noSuchFileOrDirectory {
            return
        }
        if unlinkat(directory.rawValue, name, 0) != 0 && errno != ENOENT { throw Errno(rawValue: errno) }
    }

    /// Opens (creating it) the lock file `name` and takes an exclusive `flock` on it, waiting for
    /// another holder. Never through a link, never blocking in the open; nothing is read or
    /// written, so a FIFO or a hard link planted there serves as well. The lock goes with the
    /// returned descriptor, which the caller closes.
    public func lock(_ name: String) throws -> FileDescriptor {
        let directory = try open(create: true)
        let fd = openat(directory.rawValue, name, O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw Errno(rawValue: errno) }
        while flock(fd, LOCK_EX) != 0 {
            guard errno == EINTR else {
                let error = Errno(rawValue: errno)
                _ = Glibc.close(fd)  // Nothing written: the error above is the one to report.
                throw error
            }
        }
        return FileDescriptor(rawValue: fd)
    }
}
