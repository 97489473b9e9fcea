import HotplugCore
import HotplugSystem
import Logging

/// Sends log lines to the systemd journal as structured entries, so that
/// `journalctl -u hotplugd HOTPLUG_DEVICE=cpu4` finds every transition of cpu4.
///
/// Metadata keys become fields: `device`, `action`, `from`, `to`, `zone`, `node`, `value`,
/// `attempts` as `HOTPLUG_<KEY>`, `errno` as the journal's own `ERRNO`; any other key as
/// `HOTPLUG_<KEY>` upper-cased. `kind` selects a MESSAGE_ID (`LogKind.messageID`).
public struct JournalLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    let label: String

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
                if let kind = LogKind(rawValue: "\(value)") { fields.append("MESSAGE_ID=\(kind.messageID)") }
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
