import HotplugCore
import HotplugDaemon
import HotplugFixtures
import HotplugSystem
import PropertyBased
import Testing

import struct SystemPackage.Errno

/// Random histories of hot-add, removal, operators' offlines and onlines, lost, repeated and
/// lying events, and kernel refusals, on a fake sysfs tree. After a rescan (what the daemon does
/// when it learns it lost events) the engine agrees with sysfs about every device, and every
/// device left offline is offline for a reason it can name.
@Suite struct ConvergenceTests {
    /// CPUs 1-4 and memory blocks 8-11 (one DIMM each) can come and go; cpu0 and memory0 stay.
    static let devices = (1...4).map { "cpu\($0)" } + (8...11).map { "memory\($0)" }
    static let operations = 8

    @Test func theEngineConvergesToSysfs() async {
        let codes = Gen.int(in: 0...(Self.devices.count * Self.operations - 1)).array(of: 1...40)
        await propertyCheck(count: 150, input: codes) { codes in
            do {
                try History(codes).check()
            } catch {
                Issue.record(error)
            }
        }
    }

    /// One random history, replayed against a fresh tree and engine.
    struct History {
        let steps: [(operation: Int, device: String)]
        let tree: FakeSysfsTree
        let kernel: FakeKernel
        let engine: CoreDriver

        init(_ codes: [Int]) throws {
            steps = codes.map {
                ($0 % ConvergenceTests.operations, ConvergenceTests.devices[$0 / ConvergenceTests.operations])
            }
            tree = try FakeSysfsTree()
            try tree.addCPU(0, online: nil)
            try tree.addMemory(0, online: true, zones: "Normal")
            kernel = try FakeKernel(tree: tree)
            var config = Config()
            config.memory.onlineType = .onlineMovable
            engine = CoreDriver(
                config: config, sysfs: kernel,
                retry: .init(attempts: 3, firstDelay: .microseconds(10), maxDelay: .microseconds(50)),
                logger: LogCapture().logger(level: .critical))
        }

        func check() throws {
            try engine.start()
            var seqnum = 0
            func deliver(_ action: String, _ device: String) {
                seqnum += 1
                engine.handle([FakeSysfsTree.event(action, device, seqnum: seqnum)])
            }
            for (operation, device) in steps {
                let present = tree.state(device) != nil
                let online = tree.state(device) == "1" || tree.state(device) == "online"
                switch operation {
                case 0 where !present, 1 where !present:  // hot-add, with its event (0) or with it lost (1)
                    try add(device)
                    if operation == 0 { deliver("add", device) }
                case 2 where present:  // hot-remove
                    try tree.remove(device)
                    deliver("remove", device)
                case 3 where online:  // an operator's offline
                    try tree.write(attribute(device), device.hasPrefix("cpu") ? "0" : "offline")
                    deliver("offline", device)
                case 4 where present && !online:  // an operator's online
                    try tree.write(attribute(device), device.hasPrefix("cpu") ? "1" : "online")
                    deliver("online", device)
                case 5:  // a repeated or synthetic event (udevadm trigger)
                    deliver(present ? "add" : "change", device)
                case 6:  // an event that says the opposite of sysfs
                    deliver(online ? "offline" : "online", device)
                case 7:  // the kernel refuses the next write
                    let answers: [Errno] = [.resourceBusy, .ioError, .notPermitted, .noMemory]
                    kernel.inject([answers[seqnum % answers.count]], into: device)
                default:
                    break
                }
            }
            engine.eventsLost()
            engine.tick(now: .now + .seconds(5))

            let known = Dictionary(engine.core.status().map { ($0.device, $0) }, uniquingKeysWith: { $1 })
            for device in ConvergenceTests.devices {
                let truth = tree.state(device)
                let status = known[device]
                switch truth {
                case nil:
                    #expect(
                        status == nil || [.removed, .absent].contains(status!.state),
                        "\(device): \(String(describing: status)) \(steps)")
                case "1", "online":
                    #expect(
                        status?.state == .online,
                        "\(device) is online, engine says \(String(describing: status)) \(steps)")
                default:
                    // Offline in sysfs: the engine knows, and knows why it leaves it so.
                    let state = try #require(status?.state, "\(device) unknown to the engine \(steps)")
                    #expect([.offline, .blocked, .failed].contains(state), "\(device): \(state) \(steps)")
                    if state == .offline {
                        #expect(status?.intent != nil, "\(device) left offline without an intent \(steps)")
                    }
                }
            }
        }

        private func add(_ device: String) throws {
            let id = DeviceID(name: device)!
            if id.kind == .cpu {
                try tree.addCPU(id.index, online: false)
            } else {
                try tree.addMemory(id.index, dimm: "PNP0C80:0\(id.index)")
            }
        }

        private func attribute(_ device: String) -> String {
            device.hasPrefix("cpu") ? "devices/system/cpu/\(device)/online" : "devices/system/memory/\(device)/state"
        }
    }
}
