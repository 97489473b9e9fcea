import Glibc
import HotplugCore
import HotplugDaemon
import HotplugFixtures
import HotplugSystem
import Testing

/// `hotplugd offline` and `online` against a temporary sysfs tree with kernel-like writes.
@Suite struct DeviceOperationsTests {
    let tree: FakeSysfsTree
    let kernel: FakeKernel

    init() throws {
        tree = try FakeSysfsTree()
        try tree.addCPU(0, online: nil)
        for cpu in 1...3 { try tree.addCPU(cpu, online: true) }
        for index in 32..<36 { try tree.addMemory(index, online: true, zones: "Movable", dimm: "PNP0C80:00") }
        kernel = try FakeKernel(tree: tree)
    }

    static func ids(_ names: String...) -> [DeviceID] { names.map { DeviceID(name: $0)! } }
    static let dimm = (32..<36).reversed().map { DeviceID(kind: .memory, index: $0)! }
    static let restore = Dictionary(uniqueKeysWithValues: dimm.map { ($0, "online_movable") })
    /// Three attempts, backoff from 10 us.
    static let retry = Actuator.Retry(attempts: 3, firstDelay: .microseconds(10), maxDelay: .microseconds(100))

    func operations(timeout: Duration = .seconds(5)) -> DeviceOperations {
        DeviceOperations(sysfs: kernel, timeout: timeout, retry: Self.retry)
    }

    @Test func aDIMMGoesOfflineHighestFirst() {
        let outcome = operations().offline(Self.dimm, restore: Self.restore)
        #expect(outcome.status == .ok)
        #expect(outcome.changed == Self.dimm)
        #expect(kernel.writes == ["memory35=offline", "memory34=offline", "memory33=offline", "memory32=offline"])
        #expect((32..<36).allSatisfy { tree.state("memory\($0)") == "offline" })
    }

    @Test(arguments: [(SIGINT, HotplugDaemon.ExitStatus.interrupted), (SIGTERM, .terminated)])
    func aStopPutsBackWhatWasTakenOffline(signal: Int32, status: HotplugDaemon.ExitStatus) {
        // The signal arrives while the second block goes offline: the third is not started.
        let outcome = operations().offline(Self.dimm, restore: Self.restore) {
            kernel.writes.count >= 2 ? signal : nil
        }
        #expect(outcome.status == status && status.rawValue == 128 + signal)
        #expect(outcome.stoppedAt == DeviceID(name: "memory33"))
        #expect(outcome.restored == Self.ids("memory34", "memory35"))
        #expect(outcome.changed.isEmpty)
        #expect(
            kernel.writes == [
                "memory35=offline", "memory34=offline", "memory34=online_movable", "memory35=online_movable",
            ])
        #expect((32..<36).allSatisfy { tree.state("memory\($0)") == "online" })
    }

    @Test func aRefusingBlockPutsTheOthersBack() {
        kernel.inject([.resourceBusy, .resourceBusy, .resourceBusy], into: "memory33")
        let outcome = operations().offline(Self.dimm, restore: Self.restore)
        #expect(outcome.status == .failed)
        #expect(outcome.failure?.device.name == "memory33")
        #expect(outcome.failure?.outcome == .failed(errno: EBUSY))
        #expect(outcome.failure?.attempts == 3, "EBUSY is retried")
        #expect(outcome.failure?.description.contains("Device or resource busy (errno 16)") == true)
        #expect(outcome.restored.map(\.name) == ["memory34", "memory35"])
        #expect(outcome.changed.isEmpty)
        #expect(
            (32..<36).allSatisfy { tree.state("memory\($0)") == "online" && tree.zones("memory\($0)") == "Movable" })
        #expect(kernel.writes.suffix(2) == ["memory34=online_movable", "memory35=online_movable"])
    }

    @Test func whatCannotBePutBackIsPartial() {
        kernel.inject([.ioError], into: "memory34")
        kernel.inject([nil, .ioError], into: "memory35")
        let outcome = operations().offline(Self.dimm, restore: Self.restore)
        #expect(outcome.status == .partial)
        #expect(outcome.failure?.outcome == .failed(errno: EIO))
        #expect(outcome.notRestored.map(\.outcome) == [.failed(errno: EIO)])
        #expect(outcome.notRestored.map(\.device.name) == ["memory35"])
        #expect(outcome.changed.map(\.name) == ["memory35"])
    }

    @Test func aWriteThatTakesTooLongIsInterrupted() {
        kernel.delay("memory35", by: .seconds(30))
        let start = ContinuousClock.now
        let outcome = operations(timeout: .milliseconds(300)).offline(Self.dimm, restore: Self.restore)
        #expect(ContinuousClock.now - start < .seconds(5))
        #expect(outcome.failure?.outcome == .failed(errno: ETIMEDOUT))
        #expect(outcome.failure?.description == "memory35: timed out")
        #expect(outcome.status == .failed)
        #expect(kernel.writes == ["memory35=offline"], "a write that timed out is not tried again")
        #expect(tree.state("memory35") == "online")
    }

    @Test func cpusComeBackOnlineLowestFirstAndGoBackIfOneFails() {
        for cpu in 1...3 { try? tree.write("devices/system/cpu/cpu\(cpu)/online", "0") }
        kernel.inject([.notPermitted], into: "cpu3")
        let outcome = operations()
            .online(Self.ids("cpu3", "cpu1", "cpu2"), values: [:])
        #expect(outcome.status == .failed)
        #expect(outcome.failure?.outcome == .blocked(errno: EPERM))
        #expect(kernel.writes == ["cpu1=1", "cpu2=1", "cpu3=1", "cpu2=0", "cpu1=0"])
        #expect((1...3).allSatisfy { tree.state("cpu\($0)") == "0" })
    }
}
