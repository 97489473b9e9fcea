/// Where one device stands, as far as hotplugd knows.
public enum DeviceState: String, Sendable, Codable, CaseIterable {
    /// Never seen: not in sysfs when scanned and no event about it yet.
    case absent
    case offline
    /// hotplugd has written the online attribute and not yet seen the result.
    case onlining
    case online
    /// The kernel reports `going-offline`, or an offline is in progress.
    case offlining
    /// The kernel sent `remove`, or the device vanished from sysfs.
    case removed
    /// Onlining failed for good (retries exhausted or an error a retry cannot fix).
    case failed
    /// The kernel refused with EPERM (SMT control forbids this thread): never retried.
    case blocked
}

/// What the kernel says about a device when its sysfs attributes are read.
public enum ObservedState: String, Sendable, Codable {
    case online
    case offline
    case goingOffline = "going-offline"
    /// The device directory does not exist.
    case absent

    /// Parses a memory block's `state` or a CPU's `online` attribute.
    public init?(attribute text: some StringProtocol) {
        switch text.trimmingWhitespace() {
        case "1", "online": self = .online
        case "0", "offline": self = .offline
        case "going-offline": self = .goingOffline
        default: return nil
        }
    }
}

/// How a write to the online attribute ended, as the actuator classified it.
public enum OnlineOutcome: Sendable, Equatable {
    case succeeded
    /// EPERM: the kernel forbids it (SMT control); retrying cannot help.
    case blocked(errno: Int32)
    /// ENOENT or ENODEV: the device went away during the write.
    case gone
    /// Any other error, after retries where retrying made sense.
    case failed(errno: Int32)
}

/// Something that happens to a device: a kernel event, a sysfs reading, or hotplugd's own action.
public enum DeviceInput: Sendable, Equatable {
    case event(UeventAction)
    case observed(ObservedState)
    case onlineRequested
    case onlineFinished(OnlineOutcome)
}

/// One change of state, reported so the caller can log it.
public struct Transition: Sendable, Equatable, CustomStringConvertible {
    public let from: DeviceState
    public let to: DeviceState
    public let input: DeviceInput

    public var description: String { "\(from.rawValue) -> \(to.rawValue)" }
}

/// The per-device state machine: a pure value with explicit transitions.
///
/// Kernel events are trusted over sysfs readings because the kernel sends KOBJ_ONLINE and
/// KOBJ_OFFLINE before it updates the attribute (drivers/base/core.c). Duplicate and
/// out-of-order events leave the state where the latest truth puts it and report no transition.
public struct DeviceMachine: Sendable, Equatable {
    public private(set) var state: DeviceState

    public init(state: DeviceState = .absent) {
        self.state = state
    }

    /// Applies one input and returns the transition it caused, or nil when the state stays.
    @discardableResult
    public mutating func apply(_ input: DeviceInput) -> Transition? {
        let next = Self.next(from: state, on: input)
        guard next != state else { return nil }
        defer { state = next }
        return Transition(from: state, to: next, input: input)
    }

    /// Whether an online request would be a legal transition now.
    public var canRequestOnline: Bool { state == .offline }

    static func next(from state: DeviceState, on input: DeviceInput) -> DeviceState {
        switch (input, state) {
        case (.event(.add), .absent), (.event(.add), .removed):
            return .offline
        case (.event(.add), _):
            // A repeated add (e.g. a synthetic one from `udevadm trigger`) says nothing new.
            return state
        case (.event(.remove), _):
            return .removed
        case (.event(.online), _):
            return .online
        case (.event(.offline), .blocked), (.event(.offline), .failed):
            // Still offline, and still not to be retried.
            return state
        case (.event(.offline), _):
            return .offline
        case (.event, _):
            // change, move, bind, unbind do not change whether a device is online.
            return state

        case (.observed(.absent), .absent):
            return .absent
        case (.observed(.absent), _):
            return .removed
        case (.observed(.online), _):
            return .online
        case (.observed(.goingOffline), _):
            return .offlining
        case (.observed(.offline), .blocked), (.observed(.offline), .failed):
            return state
        case (.observed(.offline), .onlining):
            // Our write is still in flight; the write's outcome decides.
            return state
        case (.observed(.offline), _):
            return .offline

        case (.onlineRequested, .offline):
            return .onlining
        case (.onlineRequested, _):
            preconditionFailure("online requested for a device in state \(state); only offline devices may be onlined")

        case (.onlineFinished(let outcome), .onlining):
            switch outcome {
            case .succeeded: return .online
            case .blocked: return .blocked
            case .gone: return .removed
            case .failed: return .failed
            }
        case (.onlineFinished, _):
            // A kernel event overtook the write's result (e.g. KOBJ_ONLINE arrived first); keep it.
            return state
        }
    }
}

extension StringProtocol {
    /// The text without leading and trailing spaces and newlines, as sysfs attributes end in `\n`.
    public func trimmingWhitespace() -> Substring {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\n" || $0 == "\t" || $0 == "\r" }
        let body = self[...].drop(while: isSpace)
        var end = body.endIndex
        while end > body.startIndex, isSpace(body[body.index(before: end)]) { end = body.index(before: end) }
        return Substring(body[body.startIndex..<end])
    }
}
