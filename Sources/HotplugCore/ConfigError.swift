/// A configuration that cannot be used, with the key, the value and the line to blame.
public struct ConfigError: Error, Equatable, CustomStringConvertible {
    /// The file, or `<string>` when parsed from memory.
    public var file: String
    /// 1-based line, when known.
    public var line: Int?
    /// The dotted key, such as `memory.online_type`; empty for a syntax error.
    public var key: String
    public var message: String

    public init(file: String, line: Int?, key: String, message: String) {
        self.file = file
        self.line = line
        self.key = key
        self.message = message
    }

    public var description: String {
        let location = line.map { "\(file):\($0)" } ?? file
        return key.isEmpty ? "\(location): \(message)" : "\(location): \(key): \(message)"
    }
}
