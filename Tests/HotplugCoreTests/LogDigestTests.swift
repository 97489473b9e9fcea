import Testing

@testable import HotplugCore

@Suite struct LogDigestTests {
    static let start = ContinuousClock.now

    static func online(_ block: Int, zone: String = "Movable", attempts: Int? = nil) -> LogRecord {
        var metadata = [
            "device": "memory\(block)", "action": "online", "from": "offline", "to": "online", "zone": zone,
            "node": "0", "by": "kernel",
        ]
        if let attempts { metadata["attempts"] = "\(attempts)" }
        return LogRecord(.info, "memory\(block) offline -> online", metadata, kind: .online)
    }

    @Test func aDIMMIsOneLineAtInfoAndItsBlocksAreDebug() {
        var digest = LogDigest()
        for block in 32..<40 { digest.hold(Self.online(block, attempts: block == 35 ? 2 : nil), now: Self.start) }
        for block in 40..<42 { digest.hold(Self.online(block, zone: "Normal"), now: Self.start) }
        digest.hold(Self.online(50), now: Self.start)
        let said = digest.take()
        let info = said.filter { $0.level == .info }
        #expect(said.filter { $0.level == .debug }.count == 11)
        #expect(
            info.map(\.message) == [
                "memory32-39,50: 9 blocks online", "memory40-41: 2 blocks online",
            ])
        #expect(info[0].metadata["devices"] == "memory32-39,50" && info[0].metadata["count"] == "9")
        #expect(info[0].metadata["zone"] == "Movable" && info[0].metadata["by"] == "kernel")
        #expect(info[0].metadata["kind"] == LogKind.online.rawValue, "the journal's MESSAGE_ID of an online")
        #expect(info[0].metadata["device"] == nil && info[0].metadata["attempts"] == nil)
        #expect(info[0].metadata["from"] == "offline" && info[0].metadata["action"] == "online", "alike, so said")
        #expect(digest.deadline == nil && digest.take().isEmpty)
    }

    @Test func blocksSeenOnlineByTheirAddOrTheirOnlineEventAreOneLine() {
        // As the kernel's events and the reads interleave, some blocks of a DIMM are read online at
        // their `add`, the others come online by their `online` event.
        var digest = LogDigest()
        for block in 32..<36 { digest.hold(Self.online(block), now: Self.start) }
        for block in 36..<40 {
            var record = Self.online(block)
            record.metadata["from"] = "absent"
            record.metadata["action"] = "add"
            digest.hold(record, now: Self.start)
        }
        let info = digest.take().filter { $0.level == .info }
        #expect(info.map(\.message) == ["memory32-39: 8 blocks online"])
        #expect(info.first?.metadata["from"] == nil && info.first?.metadata["action"] == nil)
    }

    @Test func aSingleBlockIsSaidAsItsOwnLine() {
        var digest = LogDigest()
        digest.hold(Self.online(32), now: Self.start)
        #expect(digest.take() == [Self.online(32)])
    }

    @Test func linesAreDueAfterAQuietSpellOrASecondAtMost() {
        var digest = LogDigest()
        digest.hold(Self.online(32), now: Self.start)
        #expect(digest.deadline == Self.start + LogDigest.quiet)
        for step in 1...20 { digest.hold(Self.online(32 + step), now: Self.start + .milliseconds(step * 60)) }
        #expect(digest.deadline == Self.start + LogDigest.longest)
    }

    @Test func onlyMemoryTransitionsAtInfoAreTaken() {
        #expect(LogDigest.takes(Self.online(32)))
        var cpu = Self.online(32)
        cpu.metadata["device"] = "cpu3"
        #expect(!LogDigest.takes(cpu))
        var failure = Self.online(32)
        failure.level = .error
        #expect(!LogDigest.takes(failure))
        #expect(!LogDigest.takes(LogRecord(.info, "memory devices present", ["device": "memory1"])))
    }
}
