import HotplugSystem
import Logging

/// A log handler that keeps every line, so tests can check what the daemon said: by fields
/// (`entries`, `has`), or by a fragment of the rendered line where the wording is the point.
public final class LogCapture: Sendable {
    /// One log line as logged: level, message and metadata.
    public struct Entry: Sendable, Equatable {
        public var level: Logger.Level
        public var message: String
        public var fields: [String: String]
    }

    private let captured = Locked<[Entry]>([])

    public init() {}

    public var entries: [Entry] { captured.withLock { $0 } }

    /// Each entry as `level message key=value ...`, keys sorted.
    public var all: [String] {
        entries.map { entry in
            let fields = entry.fields.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
            return "\(entry.level) \(entry.message) \(fields.joined(separator: " "))"
        }
    }

    public func contains(_ fragment: String) -> Bool { all.contains { $0.contains(fragment) } }

    public func count(_ fragment: String) -> Int { all.filter { $0.contains(fragment) }.count }

    /// Whether a line at `level` with this message carries at least these fields.
    public func has(_ level: Logger.Level, _ message: String, _ fields: [String: String] = [:]) -> Bool {
        entries.contains { entry in
            entry.level == level && entry.message == message && fields.allSatisfy { entry.fields[$0.key] == $0.value }
        }
    }

    /// The fields of every line with this message.
    public func fields(of message: String) -> [[String: String]] {
        entries.filter { $0.message == message }.map(\.fields)
    }

    public func logger(level: Logger.Level = .debug) -> Logger {
        var logger = Logger(label: "test") { _ in Handler(capture: self) }
        logger.logLevel = level
        return logger
    }

    fileprivate func append(_ entry: Entry) { captured.withLock { $0.append(entry) } }

    private struct Handler: LogHandler {
        let capture: LogCapture
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            let fields = metadata.merging(event.metadata ?? [:]) { $1 }.mapValues { "\($0)" }
            capture.append(Entry(level: event.level, message: "\(event.message)", fields: fields))
        }
    }
}
