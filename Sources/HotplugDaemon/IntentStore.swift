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

    /// Held for the process: every store made from one `IntentStore` shares its descriptor.
    public let files: OwnDirectory

    public init(directory: String) {
        files = OwnDirectory(directory)
    }

    public var directory: String { files.path }
    public var path: String { files.path(of: "intent") }

    /// The entries on disk, and the lines that are not entries. No file means no intent.
    public func load() throws -> (intent: OperatorIntent, badLines: [OperatorIntent.BadLine]) {
        do {
            return OperatorIntent.parse(try files.read("intent", limit: OperatorIntent.maximumFileBytes))
        } catch let error as Errno where error == .noSuchFileOrDirectory {
            return (OperatorIntent(), [])
        }
    }

    /// Changes the file under the lock; writes only if `change` changed something.
    /// Returns the intent after the change.
    @discardableResult
    public func update(_ change: (inout OperatorIntent) -> Void) throws -> OperatorIntent {
        let lock = try files.lock("intent.lock")
        defer { _ = Glibc.close(lock.rawValue) }  // Only locked, never written.
        let before = try load().intent
        var after = before
        change(&after)
        if after != before {
            let text = after.text
            // Never a file the reader would refuse: the change is refused instead, and said.
            guard text.utf8.count <= OperatorIntent.maximumFileBytes else {
                throw IntentStoreError.tooLarge(bytes: text.utf8.count)
            }
            try files.write("intent", text)
        }
        return after
    }

    /// Seconds since the epoch, the time stamp of new entries.
    public static var now: Int { Int(time(nil)) }
}

public enum IntentStoreError: Error, CustomStringConvertible {
    case tooLarge(bytes: Int)

    public var description: String {
        switch self {
        case .tooLarge(let bytes):
            "the intent would take \(bytes) bytes, over the \(OperatorIntent.maximumFileBytes) the file may hold"
        }
    }
}
