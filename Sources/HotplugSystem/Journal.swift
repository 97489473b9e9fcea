import CHotplug
import Glibc

/// The systemd journal's native protocol, through libsystemd (sd_journal_sendv(3)).
public enum Journal {
    /// Whether standard error is journald's stream for this service: systemd sets `JOURNAL_STREAM`
    /// to the device and inode of that stream, so a redirected stderr does not count.
    public static var isStandardErrorConnected: Bool {
        guard let value = getenv("JOURNAL_STREAM") else { return false }
        let parts = String(cString: value).split(separator: ":")
        var status = stat()
        guard parts.count == 2, fstat(STDERR_FILENO, &status) == 0 else { return false }
        return UInt64(parts[0]) == UInt64(status.st_dev) && UInt64(parts[1]) == UInt64(status.st_ino)
    }

    /// Sends one entry made of `KEY=value` fields; returns 0 or a negative errno.
    @discardableResult
    public static func send(_ fields: [String]) -> Int32 {
        // One buffer, and vectors pointing into it while it is pinned.
        var bytes: [UInt8] = []
        var ranges: [(offset: Int, count: Int)] = []
        for field in fields {
            ranges.append((bytes.count, field.utf8.count))
            bytes += field.utf8
        }
        guard !bytes.isEmpty else { return -EINVAL }
        return bytes.withUnsafeMutableBytes { buffer in
            var vectors = ranges.map { iovec(iov_base: buffer.baseAddress! + $0.offset, iov_len: $0.count) }
            return sd_journal_sendv(&vectors, Int32(vectors.count))
        }
    }
}
