import HotplugCore
import Testing

@Suite struct LogRateLimitTests {
    @Test func aBurstIsLoggedThenCountedThenSummed() {
        var limit = LogRateLimit(burst: 3, interval: .seconds(60))
        let start = ContinuousClock.now
        let first = (0..<10).map { limit.admit(now: start + .seconds($0)) }
        #expect(first == [0, 0, 0, nil, nil, nil, nil, nil, nil, nil])
        // A new window: the next line says how many were left out.
        #expect(limit.admit(now: start + .seconds(61)) == 7)
        #expect(limit.admit(now: start + .seconds(62)) == 0)
    }
}
