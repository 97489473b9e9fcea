import TOMLKit

/// Reads hotplugd.toml into a validated `Config`.
///
/// TOML syntax and types are TOMLKit's job; this file adds what a daemon needs on top:
/// unknown keys are errors (a typo must not silently fall back to a default), every value is
/// range-checked, and every error names its key and line.
public enum ConfigParser {
    /// The file as read. UTF-8 is checked here, so that a stray byte is an error naming its line
    /// rather than a replacement character for TOML to stumble on.
    public static func parse(bytes: [UInt8], file: String) throws(ConfigError) -> Config {
        guard let text = String(validating: bytes, as: UTF8.self) else {
            let lines = bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
            let bad = lines.firstIndex { String(validating: $0, as: UTF8.self) == nil }
            throw ConfigError(file: file, line: bad.map { $0 + 1 }, key: "", message: "not valid UTF-8")
        }
        return try parse(text, file: file)
    }

    public static func parse(_ text: String, file: String = "<string>") throws(ConfigError) -> Config {
        try checkTableHeaders(text, file: file)
        let locator = TOMLLocator(text: text)
        let raw: ConfigFile
        var errors: [ConfigError] = []
        do {
            raw = try TOMLDecoder(strictDecoding: true).decode(ConfigFile.self, from: text)
        } catch let error as TOMLParseError {
            let line = error.source.begin.line
            if let twice = Self.givenTwice(error.description) {
                // toml++ names the rule ("cannot redefine existing ..."); the key is what to fix.
                let key = locator.path(atLine: line).map(TOMLPath.dotted) ?? ""
                throw ConfigError(file: file, line: line, key: key, message: twice)
            }
            throw ConfigError(file: file, line: line, key: "", message: error.description)
        } catch let error as UnexpectedKeysError {
            // Each entry's path already ends with the unexpected key: all of them are said, and
            // the values of the known keys are still checked (decoded again, unknown keys ignored).
            errors = error.keys.values.map { keys in
                let path = keys.map(TOMLPath.Component.init)
                return ConfigError(
                    file: file, line: locator.line(of: path), key: TOMLPath.dotted(path), message: "unknown key")
            }
            do {
                raw = try TOMLDecoder(strictDecoding: false).decode(ConfigFile.self, from: text)
            } catch let error as DecodingError {
                throw ConfigError.all(errors + [Self.describe(error, file: file, locator: locator)])
            } catch {
                throw ConfigError.all(errors)
            }
        } catch let error as DecodingError {
            throw Self.describe(error, file: file, locator: locator)
        } catch {
            throw ConfigError(file: file, line: nil, key: "", message: "\(error)")
        }
        let config: Config
        do throws(ConfigFile.Invalids) {
            config = try raw.validated()
        } catch {
            throw ConfigError.all(
                errors
                    + error.all.map {
                        ConfigError(
                            file: file, line: locator.line(of: $0.path), key: TOMLPath.dotted($0.path),
                            message: $0.message)
                    })
        }
        if !errors.isEmpty { throw ConfigError.all(errors) }
        return config
    }

    /// What to say instead of toml++'s "cannot redefine existing boolean 'auto_online'" (a key
    /// written twice) or "... existing table 'cpu'" (a table header written twice); nil for
    /// any other error.
    static func givenTwice(_ message: String) -> String? {
        guard let range = message.range(of: "cannot redefine existing ") else { return nil }
        return message[range.upperBound...].hasPrefix("table ")
            ? "this table appears twice; each table is written once, with all its keys"
            : "given twice in its table"
    }

    /// toml++ (inside TOMLKit) asserts, and so aborts the whole process, on a table header whose
    /// first key starts with a character no key can start with (`[!cpu]`). Such a header is
    /// refused here, before TOMLKit sees it.
    static func checkTableHeaders(_ text: String, file: String) throws(ConfigError) {
        // Bytes, not Characters: "\r\n" is one Character and would hide the line break.
        let isSpace: (UInt8) -> Bool = { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") }
        let startsKey: (UInt8) -> Bool = { byte in
            (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z"))
                || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
                || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || Array("_-\"']".utf8).contains(byte)
        }
        for (number, line) in text.utf8.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
            .enumerated()
        {
            var rest = line.drop(while: isSpace)
            guard rest.first == UInt8(ascii: "[") else { continue }
            rest = rest.dropFirst()
            if rest.first == UInt8(ascii: "[") { rest = rest.dropFirst() }
            rest = rest.drop(while: isSpace)
            if let first = rest.first, startsKey(first) { continue }
            let what =
                rest.first.map { _ in "'\(String(decoding: rest.prefix(1), as: UTF8.self))'" } ?? "the end of the line"
            throw ConfigError(
                file: file, line: number + 1, key: "", message: "a table header must start with a key, not \(what)")
        }
    }

    private static func describe(_ error: DecodingError, file: String, locator: TOMLLocator) -> ConfigError {
        let path: [TOMLPath.Component]
        let message: String
        switch error {
        case .typeMismatch(let type, let context):
            path = context.codingPath.map(TOMLPath.Component.init)
            message = "expected \(TOMLPath.describe(type))"
        case .valueNotFound(let type, let context):
            path = context.codingPath.map(TOMLPath.Component.init)
            message = "expected \(TOMLPath.describe(type))"
        case .keyNotFound(let key, let context):
            // TOMLKit reports a value of the wrong type as a missing key, with the key in the path.
            let components = context.codingPath.map(TOMLPath.Component.init)
            path = components.last == .init(key) ? components : components + [.init(key)]
            message = "expected \(ConfigFile.expectedType(of: key.stringValue))"
        case .dataCorrupted(let context):
            path = context.codingPath.map(TOMLPath.Component.init)
            message = context.debugDescription
        @unknown default:
            path = []
            message = "\(error)"
        }
        return ConfigError(file: file, line: locator.line(of: path), key: TOMLPath.dotted(path), message: message)
    }
}

/// A key's place in the document: table names, array-of-tables indices, the key itself.
enum TOMLPath {
    enum Component: Equatable {
        case key(String)
        case index(Int)

        init(_ codingKey: any CodingKey) {
            if let index = codingKey.intValue { self = .index(index) } else { self = .key(codingKey.stringValue) }
        }
    }

    static func dotted(_ path: [Component]) -> String {
        var text = ""
        for component in path {
            switch component {
            case .key(let key): text += text.isEmpty ? key : ".\(key)"
            case .index(let index): text += "[\(index)]"
            }
        }
        return text
    }

    static func describe(_ type: Any.Type) -> String {
        switch type {
        case is Int.Type: "an integer"
        case is Bool.Type: "true or false"
        case is String.Type: "a string"
        // TOMLKit names its own array type; every array in the file is one of strings.
        case _ where "\(type)".contains("Array"): "an array of strings"
        default: "a value of type \(type)"
        }
    }
}

/// Finds the line of a key in TOML text, for error messages. It follows table headers
/// (`[a.b]`, `[[a.b]]` with their running index) and `key = value` lines; TOMLKit does not
/// report positions after a successful parse.
struct TOMLLocator {
    private var entries: [(path: [TOMLPath.Component], line: Int)] = []

    init(text: String) {
        var table: [TOMLPath.Component] = []
        var arrayCounts: [String: Int] = [:]
        for (offset, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.trimmingWhitespace()
            if line.hasPrefix("[[") {
                let name = line.dropFirst(2).prefix { $0 != "]" }
                let keys = Self.keys(name)
                let dotted = TOMLPath.dotted(keys)
                let index = arrayCounts[dotted, default: 0]
                arrayCounts[dotted] = index + 1
                table = keys + [.index(index)]
                entries.append((table, offset + 1))
            } else if line.hasPrefix("[") {
                table = Self.keys(line.dropFirst().prefix { $0 != "]" })
                entries.append((table, offset + 1))
            } else if !line.hasPrefix("#"), let equals = line.firstIndex(of: "=") {
                entries.append((table + Self.keys(line[..<equals]), offset + 1))
            }
        }
    }

    /// The key or table header written on a line, if any.
    func path(atLine line: Int) -> [TOMLPath.Component]? {
        entries.first { $0.line == line }?.path
    }

    func line(of path: [TOMLPath.Component]) -> Int? {
        if let exact = entries.first(where: { $0.path == path }) { return exact.line }
        // The nearest enclosing table or key that is written out.
        var prefix = path
        while !prefix.isEmpty {
            prefix.removeLast()
            if let enclosing = entries.first(where: { $0.path == prefix }) { return enclosing.line }
        }
        return nil
    }

    private static func keys(_ text: Substring) -> [TOMLPath.Component] {
        text.split(separator: ".").map { part in
            var key = part.trimmingWhitespace()
            if key.count >= 2, let first = key.first, (first == "\"" || first == "'"), key.last == first {
                key = key.dropFirst().dropLast()
            }
            return .key(String(key))
        }
    }
}
