/// The configuration file as written: every key optional, names as in the file.
/// `validated()` checks each value and fills in the defaults.
struct ConfigFile: Decodable {
    struct Invalid: Error {
        var path: [TOMLPath.Component]
        var message: String
    }

    /// Every problem `validated()` found.
    struct Invalids: Error {
        var all: [Invalid]
    }

    struct Monitor: Decodable {
        var source: String?
        var receiveBufferBytes: Int?
        enum CodingKeys: String, CodingKey {
            case source
            case receiveBufferBytes = "receive_buffer_bytes"
        }
    }

    struct CPU: Decodable {
        var autoOnline: Bool?
        var include: String?
        var exclude: String?
        var coldplug: String?
        var enforce: Bool?
        enum CodingKeys: String, CodingKey {
            case autoOnline = "auto_online"
            case include, exclude, coldplug, enforce
        }
    }

    struct Node: Decodable {
        var node: Int?
        var autoOnline: Bool?
        var onlineType: String?
        enum CodingKeys: String, CodingKey {
            case node
            case autoOnline = "auto_online"
            case onlineType = "online_type"
        }
    }

    struct Memory: Decodable {
        var autoOnline: Bool?
        var onlineType: String?
        var autoMovableRatio: Int?
        var autoMovableNUMAAware: Bool?
        var coldplug: String?
        var enforce: Bool?
        var kernelOnline: Bool?
        var dax: String?
        var node: [Node]?
        enum CodingKeys: String, CodingKey {
            case autoOnline = "auto_online"
            case onlineType = "online_type"
            case autoMovableRatio = "auto_movable_ratio"
            case autoMovableNUMAAware = "auto_movable_numa_aware"
            case kernelOnline = "kernel_online"
            case coldplug, enforce, dax, node
        }
    }

    struct Metrics: Decodable {
        var textfile: String?
    }

    struct Hook: Decodable {
        var name: String?
        var command: [String]?
        var on: [String]?
        var devices: String?
        var timeoutSeconds: Int?
        enum CodingKeys: String, CodingKey {
            case name, command, on, devices
            case timeoutSeconds = "timeout_seconds"
        }
    }

    var monitor: Monitor?
    var metrics: Metrics?
    var cpu: CPU?
    var memory: Memory?
    var hook: [Hook]?

    /// The bounds accepted for the socket receive buffer: below 64 KiB a burst of a few
    /// memory blocks already overflows; above 2 GiB the kernel's int-sized option cannot hold it.
    static let receiveBufferRange = (64 << 10)...((1 << 31) - 1)
    /// The kernel takes any unsigned percentage; beyond 100000% the ratio is meaningless.
    static let ratioRange = 0...100_000
    /// MAX_NUMNODES is at most 1024 on the kernel's own configurations.
    static let nodeRange = 0...1023
    /// A hook that runs an hour is stuck, not slow.
    static let hookTimeoutRange = 1...3600

    /// What a key takes, for messages about a value of the wrong type.
    static func expectedType(of key: String) -> String {
        switch key {
        case "receive_buffer_bytes", "auto_movable_ratio", "node", "timeout_seconds": "an integer"
        case "auto_online", "auto_movable_numa_aware", "enforce", "kernel_online": "true or false"
        case "source", "include", "exclude", "coldplug", "online_type", "textfile", "name", "devices", "dax": "a string"
        case "command", "on": "an array of strings"
        default: "a table"
        }
    }

    /// Every value checked; the problems are all reported, in the order the checks run (the
    /// parser sorts them by line).
    func validated() throws(Invalids) -> Config {
        var config = Config()
        var problems: [Invalid] = []
        /// The value, or nil with the problem noted: one bad value does not hide the next.
        func check<Value>(_ body: () throws(Invalid) -> Value) -> Value? {
            do {
                return try body()
            } catch {
                problems.append(error)
                return nil
            }
        }
        /// Sets `setting` to the checked value; a bad value leaves the default and is noted.
        func set<Value>(_ setting: inout Value, _ body: () throws(Invalid) -> Value) {
            if let value = check(body) { setting = value }
        }
        if let monitor {
            if let text = monitor.source {
                set(&config.monitor.source) { () throws(Invalid) in try Self.choice(text, at: ["monitor", "source"]) }
            }
            if let bytes = monitor.receiveBufferBytes {
                set(&config.monitor.receiveBufferBytes) { () throws(Invalid) in
                    try Self.bounded(bytes, Self.receiveBufferRange, at: ["monitor", "receive_buffer_bytes"])
                }
            }
        }
        if let cpu {
            if let value = cpu.autoOnline { config.cpu.autoOnline = value }
            if let text = cpu.include {
                set(&config.cpu.include) { () throws(Invalid) in try Self.cpuList(text, at: ["cpu", "include"]) }
            }
            if let text = cpu.exclude {
                set(&config.cpu.exclude) { () throws(Invalid) in try Self.cpuList(text, at: ["cpu", "exclude"]) }
            }
            if let text = cpu.coldplug {
                set(&config.cpu.coldplug) { () throws(Invalid) in try Self.choice(text, at: ["cpu", "coldplug"]) }
            }
            if let value = cpu.enforce { config.cpu.enforce = value }
        }
        if let memory {
            if let value = memory.autoOnline { config.memory.autoOnline = value }
            if let text = memory.onlineType {
                set(&config.memory.onlineType) { () throws(Invalid) in
                    try Self.choice(text, at: ["memory", "online_type"])
                }
            }
            if let ratio = memory.autoMovableRatio {
                set(&config.memory.autoMovableRatio) { () throws(Invalid) in
                    try Self.bounded(ratio, Self.ratioRange, at: ["memory", "auto_movable_ratio"])
                }
            }
            if let value = memory.autoMovableNUMAAware { config.memory.autoMovableNUMAAware = value }
            if let text = memory.coldplug {
                set(&config.memory.coldplug) { () throws(Invalid) in try Self.choice(text, at: ["memory", "coldplug"]) }
            }
            if let value = memory.enforce { config.memory.enforce = value }
            if let value = memory.kernelOnline { config.memory.kernelOnline = value }
            if let text = memory.dax {
                set(&config.memory.dax) { () throws(Invalid) in try Self.choice(text, at: ["memory", "dax"]) }
            }
            for (index, node) in (memory.node ?? []).enumerated() {
                let path: [TOMLPath.Component] = [.key("memory"), .key("node"), .index(index)]
                guard let id = node.node else {
                    problems.append(Invalid(path: path + [.key("node")], message: "required key is missing"))
                    continue
                }
                guard
                    let nodeID = check({ () throws(Invalid) in
                        try Self.bounded(id, Self.nodeRange, at: path + [.key("node")])
                    })
                else { continue }
                if config.memory.nodes.contains(where: { $0.node == nodeID }) {
                    problems.append(Invalid(path: path + [.key("node")], message: "node \(nodeID) already has a rule"))
                    continue
                }
                var rule = Config.NodeRule(node: nodeID, autoOnline: node.autoOnline)
                if let text = node.onlineType {
                    rule.onlineType = check { () throws(Invalid) in
                        try Self.choice(text, at: path + [.key("online_type")])
                    }
                }
                config.memory.nodes.append(rule)
            }
        }
        if let textfile = metrics?.textfile {
            if textfile.hasPrefix("/"), textfile.hasSuffix(".prom"), !textfile.contains("\0") {
                config.metrics.textfile = textfile
            } else {
                problems.append(
                    Invalid(
                        path: [.key("metrics"), .key("textfile")],
                        message: "must be an absolute path ending in .prom (the textfile collector reads only those)"))
            }
        }
        for (index, hook) in (hook ?? []).enumerated() {
            guard let parsed = check({ () throws(Invalid) in try Self.hook(hook, at: [.key("hook"), .index(index)]) })
            else { continue }
            if config.hooks.contains(where: { $0.name == parsed.name }) {
                problems.append(
                    Invalid(
                        path: [.key("hook"), .index(index), .key("name")],
                        message: "\(parsed.name.debugDescription) is used by another hook"))
                continue
            }
            config.hooks.append(parsed)
        }
        guard problems.isEmpty else { throw Invalids(all: problems) }
        return config
    }

    private static func hook(_ hook: Hook, at path: [TOMLPath.Component]) throws(Invalid) -> Config.Hook {
        guard let command = hook.command, let program = command.first else {
            throw Invalid(
                path: path + [.key("command")], message: "required: the program's absolute path and its arguments")
        }
        guard program.hasPrefix("/"), !command.contains(where: { $0.contains("\0") }) else {
            throw Invalid(
                path: path + [.key("command")], message: "\(program.debugDescription) is not an absolute path")
        }
        let name = hook.name ?? String(program.split(separator: "/").last ?? "hook")
        guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || "-_.".contains($0) }) else {
            throw Invalid(
                path: path + [.key("name")], message: "\(name.debugDescription) is not a name (letters, digits, - _ .)")
        }
        var result = Config.Hook(name: name, command: command)
        if let events = hook.on {
            guard !events.isEmpty else { throw Invalid(path: path + [.key("on")], message: "lists no event") }
            var chosen = Set<HookEvent>()
            for (index, text) in events.enumerated() {
                chosen.insert(try choice(text, at: path + [.key("on"), .index(index)]))
            }
            result.events = chosen
        }
        switch hook.devices ?? "all" {
        case "all": break
        case "cpu": result.kinds = [.cpu]
        case "memory": result.kinds = [.memory]
        case let other:
            throw Invalid(
                path: path + [.key("devices")], message: "\(other.debugDescription) is not one of cpu, memory, all")
        }
        if let seconds = hook.timeoutSeconds {
            result.timeout = .seconds(try bounded(seconds, hookTimeoutRange, at: path + [.key("timeout_seconds")]))
        }
        return result
    }

    private static func choice<Value: RawRepresentable & CaseIterable>(
        _ text: String, at path: [String]
    ) throws(Invalid) -> Value where Value.RawValue == String {
        try choice(text, at: path.map { .key($0) })
    }

    private static func choice<Value: RawRepresentable & CaseIterable>(
        _ text: String, at path: [TOMLPath.Component]
    ) throws(Invalid) -> Value where Value.RawValue == String {
        guard let value = Value(rawValue: text) else {
            let allowed = Value.allCases.map(\.rawValue).joined(separator: ", ")
            throw Invalid(path: path, message: "\(text.debugDescription) is not one of \(allowed)")
        }
        return value
    }

    private static func bounded(_ value: Int, _ range: ClosedRange<Int>, at path: [String]) throws(Invalid) -> Int {
        try bounded(value, range, at: path.map { .key($0) })
    }

    private static func bounded(
        _ value: Int, _ range: ClosedRange<Int>, at path: [TOMLPath.Component]
    ) throws(Invalid) -> Int {
        guard range.contains(value) else {
            throw Invalid(path: path, message: "\(value) is outside \(range.lowerBound)...\(range.upperBound)")
        }
        return value
    }

    private static func cpuList(_ text: String, at path: [String]) throws(Invalid) -> CPUList {
        do {
            return try CPUList(parsing: text)
        } catch {
            throw Invalid(path: path.map { .key($0) }, message: error.description)
        }
    }
}
