/// A configuration that cannot be used, with the key, the value and the line to blame.
public struct ConfigError: Error, Equatable, CustomStringConvertible {
    /// The file, or `<string>` when parsed from memory.
    public var file: String
    /// 1-based line, when known.
    public var line: Int?
    /// The dotted key, such as `memory.online_type`; empty for a syntax error.
    public var key: String
    public var message: String
    /// The file's other errors, after this one in file order: a file is fixed in one go, not one
    /// error per run.
    public var more: [ConfigError] = []

    public init(file: String, line: Int?, key: String, message: String) {
        self.file = file
        self.line = line
        self.key = key
        self.message = message
    }

    /// The errors in file order (those without a line last) as one error: the first, with the others in `more`.
    static func all(_ errors: [ConfigError]) -> ConfigError {
        var sorted = errors.sorted { ($0.line ?? .max) < ($1.line ?? .max) }
        var first = sorted.removeFirst()
        first.more = sorted
        return first
    }

    /// One line per error.
    public var description: String {
        ([self] + more).map { error in
            let location = error.line.map { "\(error.file):\($0)" } ?? error.file
            return error.key.isEmpty ? "\(location): \(error.message)" : "\(location): \(error.key): \(error.message)"
        }.joined(separator: "\n")
    }
}
