import HotplugCore
import Testing

@Suite struct OperatorIntentTests {
    @Test func textRoundTrips() {
        var intent = OperatorIntent()
        intent[DeviceID(name: "memory40")!] = .init(origin: .command, since: 1_796_000_012)
        intent[DeviceID(name: "cpu3")!] = .init(origin: .observed, since: 1_796_000_000)
        #expect(
            intent.text
                == "# hotplugd operator intent: devices kept offline\ncpu3 observed 1796000000\nmemory40 command 1796000012\n"
        )
        let (parsed, bad) = OperatorIntent.parse(intent.text)
        #expect(parsed == intent)
        #expect(bad.isEmpty)
    }

    @Test func badLinesAreReportedAndTheRestKept() {
        let text =
            "cpu3 observed 10\n../cpu4 observed 10\ncpu5 admin 10\ncpu6 observed -1\ncpu7 observed\n\n# note\nmemory8 command 20"
        let (intent, bad) = OperatorIntent.parse(text)
        #expect(intent.entries.keys.map(\.name).sorted() == ["cpu3", "memory8"])
        #expect(bad.map(\.line) == [2, 3, 4, 5])
        #expect(bad.first?.description == "line 2: not `DEVICE observed|command SECONDS`: \"../cpu4 observed 10\"")
    }

    @Test func timesAreShownInUTC() {
        #expect(OperatorIntent.utcTime(0) == "1970-01-01 00:00:00 UTC")
        #expect(OperatorIntent.utcTime(1_796_000_000) == "2026-11-30 00:53:20 UTC")
        #expect(OperatorIntent.utcTime(951_782_400 + 86399) == "2000-02-29 23:59:59 UTC")
        let entry = OperatorIntent.Entry(origin: .command, since: 0)
        #expect(entry.description == "taken offline by hotplugd offline at 1970-01-01 00:00:00 UTC")
    }
}
