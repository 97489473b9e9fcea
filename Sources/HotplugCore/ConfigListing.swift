/// The whole configuration in force, one `key = value` line per setting, defaults included:
/// what `hotplugd check-config` prints, so that nothing the daemon will do is left unsaid.
extension Config {
    public var listing: [String] {
        var lines = [
            "monitor.source = \(monitor.source.rawValue)",
            "monitor.receive_buffer_bytes = \(monitor.receiveBufferBytes)",
            "metrics.textfile = \(metrics.textfile ?? "(none: no metrics file)")",
            "cpu.auto_online = \(cpu.autoOnline)",
            "cpu.include = \(cpu.include)",
            "cpu.exclude = \(cpu.exclude)",
            "cpu.coldplug = \(cpu.coldplug.rawValue)",
            "cpu.enforce = \(cpu.enforce)",
            "memory.auto_online = \(memory.autoOnline)",
            "memory.online_type = \(memory.onlineType.rawValue)",
            "memory.auto_movable_ratio = \(memory.autoMovableRatio)",
            "memory.auto_movable_numa_aware = \(memory.autoMovableNUMAAware)",
            "memory.coldplug = \(memory.coldplug.rawValue)",
            "memory.enforce = \(memory.enforce)",
            "memory.kernel_online = \(memory.kernelOnline)",
            "memory.dax = \(memory.dax.rawValue)",
        ]
        for rule in memory.nodes {
            let auto = rule.autoOnline.map { "\($0)" } ?? "\(memory.autoOnline) (from [memory])"
            let type = rule.onlineType?.rawValue ?? "\(memory.onlineType.rawValue) (from [memory])"
            lines.append("memory.node[\(rule.node)].auto_online = \(auto)")
            lines.append("memory.node[\(rule.node)].online_type = \(type)")
        }
        for (index, hook) in hooks.enumerated() {
            let events = HookEvent.allCases.filter(hook.events.contains).map(\.rawValue)
            let kinds =
                hook.kinds.count == DeviceKind.allCases.count
                ? "all" : hook.kinds.map(\.rawValue).sorted().first ?? "all"
            lines += [
                "hook[\(index)].name = \(hook.name)",
                "hook[\(index)].command = \(hook.command.map { $0.debugDescription }.joined(separator: " "))",
                "hook[\(index)].on = \(events.joined(separator: " "))",
                "hook[\(index)].devices = \(kinds)",
                "hook[\(index)].timeout_seconds = \(hook.timeout.components.seconds)",
            ]
        }
        if hooks.isEmpty { lines.append("hooks = (none)") }
        return lines
    }
}
