import Glibc
import HotplugCore
import HotplugSystem

import struct SystemPackage.Errno

/// The operator-intent file in hotplugd's state directory (`/var/lib/hotplugd/intent`), shared
/// by the daemon and the `hotplugd offline`/`online` commands.
///
/// Readers see whole files only (each write replaces the file by rename); writers take an
/// exclusive `flock` on `intent.lock` around read-modify-write, so a command and the daemon
/// recording the same offline at once never lose each other's entries.
public struct IntentStore: Sendable {
    public static let defaultDirectory = "/var/lib/hotplugd"

    public let directory: String

    public init(directory: String) {
        self.directory = directory
    }

    public var path: String { "\(directory)/intent" }

    /// The entries on disk, and the lines that are not entries. No file means no intent.
    public func load() throws -> (intent: OperatorIntent, badLines: [OperatorIntent.BadLine]) {
        do {
            return OperatorIntent.parse(try TextFile.readOwn(path))
        } catch let error as Errno where error == .noSuchFileOrDirectory {
            return (OperatorIntent(), [])
        }
    }

    /// Changes the file under the lock; writes only if `change` changed something.
    /// Returns the intent after the change.
    @discardableResult
    public func update(_ change: (inout OperatorIntent) -> Void) throws -> OperatorIntent {
        if mkdir(directory, 0o755) != 0 && errno != EEXIST { throw Errno(rawValue: errno) }
        let lock = open("\(directory)/intent.lock", O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o644)
        guard lock >= 0 else { throw Errno(rawValue: errno) }
        defer { close(lock) }
        while flock(lock, LOCK_EX) != 0 {
            guard errno == EINTR else { throw Errno(rawValue: errno) }
        }
        let before = try load().intent
        var after = before
        change(&after)
        if after != before { try TextFile.write(path, after.text) }
        return after
    }

    /// Seconds since the epoch, the time stamp of new entries.
    public static var now: Int { Int(time(nil)) }
}
