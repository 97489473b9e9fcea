/// At most `burst` log lines per `interval` for one kind of bad input; the lines past that are
/// counted, and the count goes out with the next line let through. Whoever can send uevents
/// (root, a broken driver) can send millions: each is refused, but the journal is not flooded.
public struct LogRateLimit: Sendable {
    let burst: Int
    let interval: Duration
    private var windowStart: ContinuousClock.Instant?
    private var logged = 0
    private var suppressed = 0

    public init(burst: Int = 20, interval: Duration = .seconds(60)) {
        self.burst = burst
        self.interval = interval
    }

    /// nil: do not log this one. Otherwise log it, saying how many were left out before it.
    public mutating func admit(now: ContinuousClock.Instant) -> Int? {
        if let start = windowStart, now - start < interval, logged >= burst {
            suppressed += 1
            return nil
        }
        if windowStart == nil || now - windowStart! >= interval {
            windowStart = now
            logged = 0
        }
        logged += 1
        defer { suppressed = 0 }
        return suppressed
    }
}
