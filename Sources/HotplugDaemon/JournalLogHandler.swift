import HotplugSystem
import Logging

/// Sends log lines to the systemd journal as structured entries, so that
/// `journalctl -u hotplugd HOTPLUG_DEVICE=cpu4` finds every transition of cpu4.
///
/// Metadata keys become fields: `device`, `action`, `from`, `to`, `zone`, `node`, `value`,
/// `attempts` as `HOTPLUG_<KEY>`, `errno` as the journal's own `ERRNO`; any other key as
/// `HOTPLUG_<KEY>` upper-cased. `kind` selects a MESSAGE_ID, one per kind of transition.
public struct JournalLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    let label: String

    /// Stable identifiers, listed in hotplugd(8), for `journalctl MESSAGE_ID=...`.
    public static let messageIDs: [String: String] = [
        "online": "5c0a1f8e2b7d4c19a3e6f0d2b8c47e51",
        "offline": "8e3b7a2c9d1f4e60b5a7c3d9e2f18a64",
        "added": "2f6d9b1e4a8c4d37b0e5f7a9c3d26b18",
        "removed": "a7c4e2f91b3d4a58c6e0d8b2f5a39c72",
        "blocked": "d3b8f6a24c9e4170a2d5e8c1b7f04e93",
        "failed": "6e1a9c3f7b2d4e85b9c0a4f6d2e73b16",
        "transition": "91f4b2d87e6a4c03b8e1d5a9f2c64d27",
        "reload-failed": "4b7e2c9a1d6f4a38b5c3e0f7a9d21c85",
        "events-lost": "c2e9a4f71b8d4e56a0c7f3b5d9e18a47",
        "intent": "ce2495ad249e4870bca8040432fda683",
        "enforce": "8c198d98aaeb4ee0a2dbade88da32190",
        "hook": "83c7698c440246dead7c02ad295d3dcf",
    ]

    public init(label: String) {
        self.label = label
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        Journal.send(Self.fields(event, handlerMetadata: metadata))
    }

    static func fields(_ event: LogEvent, handlerMetadata: Logger.Metadata) -> [String] {
        var fields = [
            "MESSAGE=\(event.message)", "PRIORITY=\(priority(event.level))", "SYSLOG_IDENTIFIER=hotplugd",
        ]
        let metadata = handlerMetadata.merging(event.metadata ?? [:]) { $1 }
        for (key, value) in metadata.sorted(by: { $0.key < $1.key }) {
            switch key {
            case "errno": fields.append("ERRNO=\(value)")
            case "kind":
                fields.append("HOTPLUG_KIND=\(value)")
                if let id = messageIDs["\(value)"] { fields.append("MESSAGE_ID=\(id)") }
            default: fields.append("HOTPLUG_\(fieldName(key))=\(value)")
            }
        }
        return fields
    }

    /// Journal field names are upper-case letters, digits and underscores.
    static func fieldName(_ key: String) -> String {
        String(key.uppercased().map { $0.isLetter || $0.isNumber ? $0 : "_" })
    }

    /// syslog(3) priorities.
    static func priority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: 7
        case .info: 6
        case .notice: 5
        case .warning: 4
        case .error: 3
        case .critical: 2
        }
    }
}
