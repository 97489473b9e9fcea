import HotplugCore
import Logging

/// Writes one log line per state transition: device, action, from, to, zone, node, and the
/// errno when onlining failed. Failures are errors, refusals (EPERM) warnings, the rest info.
/// The start of an online write (`offline -> onlining`) is debug: its outcome always follows in a
/// line of its own, and a third line per memory block measurably slows a large hot-add.
struct TransitionLog {
    let logger: Logger

    func transition(
        _ id: DeviceID, _ transition: Transition, action: String, record: DeviceRecord, value: String?,
        attempts: Int?
    ) {
        // A scan sees every device once, at debug level: skip building what nobody logs.
        let quiet = (transition.from == .absent && transition.input != .event(.add)) || transition.to == .onlining
        let failure: Bool = if case .onlineFinished(let outcome) = transition.input { outcome != .succeeded } else { false }
        if logger.logLevel > (quiet ? .debug : .info) && !failure { return }
        var metadata: Logger.Metadata = [
            "device": "\(id)", "action": "\(action)", "from": "\(transition.from.rawValue)",
            "to": "\(transition.to.rawValue)",
        ]
        if let zone = record.block?.zone, transition.to == .online { metadata["zone"] = "\(zone)" }
        if let node = record.node { metadata["node"] = "\(node)" }
        if let value { metadata["value"] = "\(value)" }
        if let attempts, attempts > 1 { metadata["attempts"] = "\(attempts)" }
        metadata["kind"] = "\(Self.kind(transition))"
        // First sight of a device at a scan is not a change of the device, and the start of a write
        // is followed by its outcome: keep both out of the way.
        var level: Logger.Level = quiet ? .debug : .info
        if case .onlineFinished(let outcome) = transition.input {
            switch outcome {
            case .failed(let errno):
                metadata["errno"] = "\(errno)"
                level = .error
            case .blocked(let errno):
                metadata["errno"] = "\(errno)"
                level = .warning
            case .succeeded, .gone:
                break
            }
        }
        logger.log(level: level, "\(id) \(transition.from.rawValue) -> \(transition.to.rawValue)", metadata: metadata)
    }

    /// The kind of transition, which selects the journal's MESSAGE_ID.
    static func kind(_ transition: Transition) -> String {
        switch transition.to {
        case .online: "online"
        case .blocked: "blocked"
        case .failed: "failed"
        case .removed: "removed"
        case .offline where transition.from == .absent: "added"
        case .offline where transition.from == .online: "offline"
        default: "transition"
        }
    }
}
