/// A log line the core wants written. The core has no logger: its owner turns these into log
/// lines (and journal fields) at the level given.
public struct LogRecord: Sendable, Equatable {
    public enum Level: Int, Sendable, Comparable {
        case debug, info, notice, warning, error
        public static func < (lhs: Level, rhs: Level) -> Bool { lhs.rawValue < rhs.rawValue }
    }

    public var level: Level
    public var message: String
    /// Structured fields; `kind` selects the journal's MESSAGE_ID (see `LogKind`).
    public var metadata: [String: String]

    public init(_ level: Level, _ message: String, _ metadata: [String: String] = [:], kind: LogKind? = nil) {
        self.level = level
        self.message = message
        self.metadata = metadata
        if let kind { self.metadata["kind"] = kind.rawValue }
    }
}

/// The kinds of log line an operator filters on, each with a stable journal MESSAGE_ID
/// (listed in hotplugd(8)): `journalctl MESSAGE_ID=...` finds every line of one kind.
public enum LogKind: String, Sendable, CaseIterable {
    case online
    case offline
    case added
    case removed
    case blocked
    case failed
    case transition
    case reloadFailed = "reload-failed"
    case eventsLost = "events-lost"
    case intent
    case enforce
    case hook
    /// Who onlines new memory (the kernel or hotplugd), at start and reload, and changes to the
    /// kernel's onlining settings.
    case memoryOnlining = "memory-onlining"

    public var messageID: String {
        switch self {
        case .online: "5c0a1f8e2b7d4c19a3e6f0d2b8c47e51"
        case .offline: "8e3b7a2c9d1f4e60b5a7c3d9e2f18a64"
        case .added: "2f6d9b1e4a8c4d37b0e5f7a9c3d26b18"
        case .removed: "a7c4e2f91b3d4a58c6e0d8b2f5a39c72"
        case .blocked: "d3b8f6a24c9e4170a2d5e8c1b7f04e93"
        case .failed: "6e1a9c3f7b2d4e85b9c0a4f6d2e73b16"
        case .transition: "91f4b2d87e6a4c03b8e1d5a9f2c64d27"
        case .reloadFailed: "4b7e2c9a1d6f4a38b5c3e0f7a9d21c85"
        case .eventsLost: "c2e9a4f71b8d4e56a0c7f3b5d9e18a47"
        case .intent: "ce2495ad249e4870bca8040432fda683"
        case .enforce: "8c198d98aaeb4ee0a2dbade88da32190"
        case .hook: "83c7698c440246dead7c02ad295d3dcf"
        case .memoryOnlining: "97f5e4c656164f0f81761ac8654f8c8e"
        }
    }

    /// The kind of a state transition.
    public init(_ transition: Transition) {
        switch transition.to {
        case .online: self = .online
        case .blocked: self = .blocked
        case .failed: self = .failed
        case .removed: self = .removed
        case .offline where transition.from == .absent: self = .added
        case .offline where transition.from == .online: self = .offline
        default: self = .transition
        }
    }
}
