import ArgumentParser
import Foundation
import Glibc
import HotplugCore
import HotplugDaemon

/// `hotplugd monitor`: the running daemon's device changes as they happen, as `udevadm monitor`
/// shows udev's events.
struct Monitor: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Follow the running daemon's device changes as they happen.",
        discussion: """
            One line per burst and kind of change (a DIMM's 64 blocks coming online is one line); \
            --devices gives one line per device, --json one JSON object per device change. Ctrl-C ends it. \
            Exit status: 0 ended by Ctrl-C or by the daemon stopping; 1 no daemon is running.
            """)

    @Flag(help: "One line per device instead of one per burst.")
    var devices = false

    @Flag(help: "One JSON object per device change: device, event, zone, node, time.")
    var json = false

    @OptionGroup var machine: MachineOptions

    func run() throws {
        guard let directory = machine.runtime else {
            throw ExitStatus.failed.reporting("no daemon to follow: give --runtime-directory with --sysfs-root")
        }
        var client: ControlClient
        switch ControlClient.connect(directory: directory) {
        case .success(let connected): client = connected
        case .failure(let error): throw ExitStatus.failed.reporting("hotplugd is not running (\(error))")
        }
        // Ctrl-C is the way out: the connection closes with the process.
        signal(SIGINT) { _ in _exit(0) }
        let json = json
        do {
            try client.monitor {
                // Said once the daemon has the subscription: nothing after this line is missed.
                if !json { print("following hotplugd's device changes (Ctrl-C ends)") }
                fflush(nil)  // Every stream: a pipe to `grep` must see each line as it comes.
            } _: { burst in
                for line in Self.lines(burst, devices: devices, json: json, at: Date()) { print(line) }
                fflush(nil)
            }
        } catch {
            throw ExitStatus.failed.reporting("\(error)")
        }
        if !json { print("hotplugd stopped") }
    }

    /// What one burst prints.
    static func lines(_ burst: [[String: Any]], devices: Bool, json: Bool, at time: Date) -> [String] {
        let stamp = ISO8601DateFormatter.string(
            from: time, timeZone: .current, formatOptions: [.withTime, .withColonSeparatorInTime])
        if json {
            let when = ISO8601DateFormatter().string(from: time)
            return burst.map { change in
                var object = change
                object["time"] = when
                do {
                    return String(
                        decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]),
                        as: UTF8.self)
                } catch {
                    return #"{"error":"\#(error)"}"#  // The daemon's own JSON, re-encoded: cannot happen.
                }
            }
        }
        if devices {
            return burst.map { change in
                "\(stamp) \(change["event"] ?? "?") \(change["device"] ?? "?")" + Self.place(change)
            }
        }
        // One line per event and kind, the devices as ranges, with the zones and nodes among them.
        var groups: [String: [[String: Any]]] = [:]
        var order: [String] = []
        for change in burst {
            let device = change["device"] as? String ?? "?"
            let kind = device.hasPrefix("cpu") ? "cpu" : "memory"
            let key = "\(change["event"] ?? "?") \(kind)"
            if groups[key] == nil { order.append(key) }
            groups[key, default: []].append(change)
        }
        return order.map { key in
            let changes = groups[key] ?? []
            let kind = key.hasSuffix("cpu") ? "cpu" : "memory"
            let indices = changes.compactMap { ($0["device"] as? String).flatMap { Int($0.drop { !$0.isNumber }) } }
            let ranges = CPUList(Set(indices).map { $0...$0 })
            let zones = Set(changes.compactMap { $0["zone"] as? String }).sorted()
            let nodes = Set(changes.compactMap { $0["node"] as? Int }).sorted().map(String.init)
            var line = "\(stamp) \(key.split(separator: " ")[0]) \(kind)\(ranges)"
            if changes.count > 1 { line += " (\(changes.count) \(kind == "cpu" ? "CPUs" : "blocks"))" }
            if !zones.isEmpty { line += " zone=\(zones.joined(separator: ","))" }
            if !nodes.isEmpty { line += " node=\(nodes.joined(separator: ","))" }
            return line
        }
    }

    private static func place(_ change: [String: Any]) -> String {
        var text = ""
        if let zone = change["zone"] as? String { text += " zone=\(zone)" }
        if let node = change["node"] as? Int { text += " node=\(node)" }
        return text
    }
}
