/// Decides whether an offline CPU is onlined.
///
/// SMT is not judged here: whether a thread is a forbidden sibling is only known to the
/// kernel (an offline CPU has no topology in sysfs), which answers a write with EPERM.
/// The state machine turns that into `blocked`, and blocked CPUs are never retried.
public struct CPUPolicy: Sendable {
    public let config: Config.CPU

    public init(config: Config.CPU) {
        self.config = config
    }

    public func decide(cpu: Int) -> PolicyDecision {
        if !config.autoOnline { return .leave(reason: "cpu.auto_online is false") }
        if !config.include.contains(cpu) { return .leave(reason: "not in cpu.include (\(config.include))") }
        if config.exclude.contains(cpu) { return .leave(reason: "in cpu.exclude (\(config.exclude))") }
        return .online(.cpu)
    }
}
