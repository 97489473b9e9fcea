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
        #expect(
            bad.first?.description == "line 2: not `DEVICE[-LAST] observed|command SECONDS`: \"../cpu4 observed 10\"")
    }

    @Test func runsOfDevicesAreOneLineEachAndRoundTrip() {
        var intent = OperatorIntent()
        let command = OperatorIntent.Entry(origin: .command, since: 20)
        for index in 1...35_999 { intent[DeviceID(kind: .memory, index: index)!] = command }
        intent[DeviceID(kind: .memory, index: 36_001)!] = command  // Not next to the run.
        intent[DeviceID(kind: .memory, index: 36_002)!] = .init(origin: .observed, since: 20)  // Another hand.
        intent[DeviceID(kind: .cpu, index: 2)!] = .init(origin: .observed, since: 7)
        intent[DeviceID(kind: .cpu, index: 3)!] = .init(origin: .observed, since: 7)
        #expect(
            intent.text
                == """
                # hotplugd operator intent: devices kept offline
                cpu2-3 observed 7
                memory1-35999 command 20
                memory36001 command 20
                memory36002 observed 20

                """)
        let (parsed, bad) = OperatorIntent.parse(intent.text)
        #expect(parsed == intent && bad.isEmpty)
    }

    @Test func runsThatCannotBeAreBadLines() {
        let text = [
            "memory9-3 command 1", "cpu2- observed 1", "memory1-cpu4 command 1", "memory0-16777216 command 1",
            "cpu1-1 observed 1",
        ].joined(separator: "\n")
        let (intent, bad) = OperatorIntent.parse(text)
        #expect(intent.isEmpty)
        #expect(bad.map(\.line) == [1, 2, 3, 4, 5])
    }

    @Test func timesAreShownInUTC() {
        #expect(OperatorIntent.utcTime(0) == "1970-01-01 00:00:00 UTC")
        #expect(OperatorIntent.utcTime(1_796_000_000) == "2026-11-30 00:53:20 UTC")
        #expect(OperatorIntent.utcTime(951_782_400 + 86399) == "2000-02-29 23:59:59 UTC")
        let entry = OperatorIntent.Entry(origin: .command, since: 0)
        #expect(entry.description == "taken offline by hotplugd offline at 1970-01-01 00:00:00 UTC")
    }
}
