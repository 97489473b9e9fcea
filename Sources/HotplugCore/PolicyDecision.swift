/// What the policy wants done with one offline device.
public enum PolicyDecision: Sendable, Equatable, CustomStringConvertible {
    /// Write `value` to the device's online attribute.
    case online(OnlineValue)
    /// Leave the device offline, for the reason given.
    case leave(reason: String)

    public var description: String {
        switch self {
        case .online(let value): "online (\(value))"
        case .leave(let reason): "leave offline: \(reason)"
        }
    }

    public var onlineValue: OnlineValue? {
        if case .online(let value) = self { return value }
        return nil
    }
}
