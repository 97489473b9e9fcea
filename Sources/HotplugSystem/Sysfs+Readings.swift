import Glibc
import HotplugCore

import struct SystemPackage.Errno

/// The reads the decision core asks for (`ReadRequest.What`), answered from sysfs.
extension SysfsAccess {
    /// Answers one read request. Never throws: a device that cannot be read is a failure in the
    /// answer, a scan that cannot go on says why in `scanError`, and the core decides what follows.
    /// `goOn` is called every 1,024 devices of a scan: it marks progress (for the watchdog) and says
    /// whether to go on, so a stop never waits for a whole
    /// machine to be read.
    public func answer(_ what: ReadRequest.What, goOn: () -> Bool = { true }) -> Readings {
        switch what {
        case .everything:
            return scan(goOn: goOn)
        case .devices(let ids, let zonesWithoutNode):
            var readings = Readings()
            for id in ids { readDevice(id, zonesWithoutNode: zonesWithoutNode, nodes: nil, into: &readings) }
            if ids.contains(where: { $0.kind == .memory }) { readDaxRAM(into: &readings) }
            return readings
        case .offlineRun(let first, let atMost):
            var readings = Readings()
            var next: DeviceID? = first
            for _ in 0..<atMost {
                guard let id = next else { break }
                do {
                    let state = try observe(id)
                    readings.devices[id] = DeviceReading(state: state)
                    if state != .offline { break }
                } catch {
                    readings.failures[id] = "\(error)"
                    break
                }
                next = DeviceID(kind: id.kind, index: id.index + 1)
            }
            return readings
        case .dimm(let firmwareNode, let below, let above):
            var readings = Readings()
            walk(from: below, step: -1, firmwareNode: firmwareNode, into: &readings)
            walk(from: above, step: 1, firmwareNode: firmwareNode, into: &readings)
            return readings
        case .onlined(let id, let hint, let zone):
            return readOnlined(id, nodeHint: hint, zone: zone)
        case .firmwareRAM:
            var readings = Readings()
            readFirmwareRAM(into: &readings)
            return readings
        case .daxRAM:
            var readings = Readings()
            readDaxRAM(into: &readings)
            return readings
        case .nodes(let ids, let hint):
            return readNodes(ids, hint: hint)
        }
    }

    /// The dax devices' ranges; unreadable, the last ones read stand, and that is said.
    private func readDaxRAM(into readings: inout Readings) {
        do {
            readings.daxRAM = try daxRAM()
        } catch {
            readings.daxRAM = nil
            readings.otherFailures.append(
                "cannot read the dax devices' ranges (\(error)); the ones read before stand for telling dax memory")
        }
    }

    /// The firmware's memory map. Without it (or unreadable, which is said) no memory counts as
    /// a driver's.
    private func readFirmwareRAM(into readings: inout Readings) {
        do {
            readings.firmwareRAM = try firmwareRAM()
        } catch {
            readings.firmwareRAM = nil
            readings.otherFailures.append(
                "cannot read the firmware's memory map (\(error)); no memory is taken for a driver's (virtio-mem, dax)")
        }
    }

    /// Every device, the block size and node membership.
    private func scan(goOn: () -> Bool) -> Readings {
        var readings = Readings()
        do {
            readings.blockSizeBytes = try memoryBlockSize()
        } catch {
            readings.scanError = "\(error)"
            return readings
        }
        // One listing per node instead of one per device. Without it each device's own link is
        // read instead: slower, not wrong, so a failure here is only noted in the answer's cost.
        let nodes: [DeviceID: Int]?
        do {
            let membership = try nodeMembership()
            nodes = membership.isEmpty ? nil : membership
        } catch {
            nodes = nil
        }
        readFirmwareRAM(into: &readings)
        readDaxRAM(into: &readings)
        var count = 0
        for kind in DeviceKind.allCases {
            let ids: [DeviceID]
            do {
                ids = try devices(kind).sorted()
            } catch {
                readings.scanError = "\(error)"
                return readings
            }
            for id in ids {
                count += 1
                if count % 1024 == 0 && !goOn() {
                    readings.scanError = "stopped"
                    return readings
                }
                readDevice(id, zonesWithoutNode: false, nodes: nodes, into: &readings)
            }
        }
        return readings
    }

    /// State, node, and for a memory block its zones and DIMM. Gone is a reading (`absent`), not a failure.
    private func readDevice(
        _ id: DeviceID, zonesWithoutNode: Bool, nodes: [DeviceID: Int]?, into readings: inout Readings
    ) {
        do throws(SysfsError) {
            if id.kind == .memory {
                let (block, state) = try memoryBlockAndState(id, zonesWithoutNode: zonesWithoutNode, nodes: nodes)
                readings.devices[id] = DeviceReading(state: state, block: block)
            } else {
                let state = try observe(id)
                let node: Int? = if state == .absent { nil } else if let nodes { nodes[id] } else { try node(of: id) }
                readings.devices[id] = DeviceReading(state: state, node: node)
            }
        } catch  where error.errno == .noSuchFileOrDirectory || error.errno == Errno(rawValue: ENODEV) {
            // ENODEV: the device went away between the open and the read of an attribute.
            readings.devices[id] = .absent
        } catch {
            readings.failures[id] = "\(error)"
        }
    }

    /// Blocks from `start` on, one `step` at a time, while their `firmware_node` is `firmwareNode`.
    private func walk(from start: DeviceID?, step: Int, firmwareNode: String, into readings: inout Readings) {
        var next = start
        while let id = next {
            do {
                guard try link(id, "firmware_node") == firmwareNode else { return }
            } catch {
                // The walk ends where a block cannot be read; the DIMM is decided with what was found.
                readings.failures[id] = "\(error)"
                return
            }
            readDevice(id, zonesWithoutNode: false, nodes: nil, into: &readings)
            next = DeviceID(kind: .memory, index: id.index + step)
        }
    }

    /// See `ReadRequest.What.nodes`. A block gone meanwhile ends the look like an unlinked one: its
    /// `remove` event follows.
    private func readNodes(_ ids: [DeviceID], hint: Int?) -> Readings {
        var readings = Readings()
        var hint = hint
        look: for id in ids.sorted() {
            let node: Int?
            if let hint, has(id, "node\(hint)") {
                node = hint
            } else {
                do throws(SysfsError) {
                    node = try self.node(of: id)
                } catch  where error.errno == .noSuchFileOrDirectory || error.errno == Errno(rawValue: ENODEV) {
                    break look
                } catch {
                    readings.failures[id] = "\(error)"
                    break look
                }
            }
            guard let node else { break }
            readings.nodes[id] = node
            hint = node
        }
        return readings
    }

    /// The node, zone and DIMM of a device just onlined: the hinted node's link is tried first, one
    /// lookup instead of a directory listing. A zone the write itself determined is not read. The
    /// DIMM link is read for `status` (a block written at its `add` was not read before).
    private func readOnlined(_ id: DeviceID, nodeHint: Int?, zone: Zone?) -> Readings {
        var readings = Readings()
        do throws(SysfsError) {
            let node: Int? = if let nodeHint, has(id, "node\(nodeHint)") { nodeHint } else { try node(of: id) }
            var block: MemoryBlock?
            if id.kind == .memory {
                let zones = if let zone { [zone] } else { Zone.list(try read(id, "valid_zones")) }
                block = MemoryBlock(
                    id: id, node: node, validZones: zones, firmwareNode: try link(id, "firmware_node"), online: true)
            }
            readings.devices[id] = DeviceReading(state: .online, node: node, block: block)
        } catch {
            readings.failures[id] = "\(error)"
        }
        return readings
    }
}
