/// Operator intent: devices somebody took offline stay offline (see `OperatorIntent`).
///
/// Changes are collected while an input is handled and handed out once, as one
/// `Effect.persistIntent` of deltas ahead of any write, so that `hotplugd offline` running at the
/// same time keeps its own entries (the store merges under its lock).
extension DecisionCore {
    /// Why an intent entry was dropped, as its log line says.
    enum IntentDrop: Sendable, Equatable, CustomStringConvertible {
        case event(UeventAction)
        case removed
        case gone
        case online
        case enforced(DeviceKind)

        var description: String {
            switch self {
            case .event(let action): "\(action.rawValue) event"
            case .removed: "removed"
            case .gone: "the device is gone"
            case .online: "the device is online"
            case .enforced(let kind): "enforce is set for \(kind) devices"
            }
        }
    }

    /// Takes in what the intent file holds; changes made since that are not stored yet stay on top.
    mutating func takeIntent(_ reading: IntentReading) {
        switch reading {
        case .loaded(let loaded, let badLines):
            for bad in badLines {
                log(.error, "ignoring a line of the intent file", ["error": "\(bad)"])
            }
            intent = loaded
            for (id, change) in pendingIntent { intent[id] = change }
        case .unreadable(let error):
            log(
                .error, "cannot read the intent file; the entries read before stay in force",
                ["error": error, "entries": "\(intent.entries.count)"])
        }
    }

    /// Squares the intent read at start with the scan: entries of devices that are gone or online
    /// are dropped, and so are those `enforce` overrules; the rest keep their device offline.
    mutating func squareIntent() {
        for (id, entry) in intent.entries.sorted(by: { $0.key < $1.key }) {
            let state = records[id]?.state ?? .absent
            if state == .absent || state == .removed {
                forgetIntent(id, because: .gone)
            } else if state == .online {
                forgetIntent(id, because: .online)
            } else if !honours(entry, of: id) {
                forgetIntent(id, because: .enforced(id.kind))
            } else {
                records[id]?.managed = false
            }
        }
    }

    /// `enforce` overrules what others did, never `hotplugd offline`, which prepares a removal.
    func honours(_ entry: OperatorIntent.Entry, of id: DeviceID) -> Bool {
        entry.origin == .command || !config.enforces(id.kind)
    }

    /// An `offline` hotplugd did not cause, for a device it had online.
    mutating func takenOffline(_ id: DeviceID) {
        if driverManaged(id) {
            // The driver that added it takes it back (a virtio-mem shrink, `daxctl offline-memory`):
            // left to it, neither onlined again nor kept as anybody's intent.
            records[id]?.managed = false
            records[id]?.takenByDriver = true
            takenBackByDriver.append(id)
            return
        }
        if let entry = intent[id], honours(entry, of: id) {
            records[id]?.managed = false
            return
        }
        if config.enforces(id.kind) {
            log(
                .notice, "taken offline by somebody else; enforce is set, so it goes online again", ["device": id.name],
                kind: .enforce)
            return
        }
        records[id]?.managed = false
        let entry = OperatorIntent.Entry(origin: .observed, since: Int(wallClockSeconds))
        setIntent(id, entry)
        log(
            .notice, "taken offline by somebody else: kept offline until somebody onlines it",
            ["device": id.name, "intent": entry.origin.rawValue], kind: .intent)
    }

    /// Whether a memory block is memory a driver added and manages itself: no DIMM of its own
    /// (`firmware_node`), and its range in no "System RAM" range of the firmware's memory map,
    /// which lists boot memory and ACPI hot-added DIMMs but never memory added with
    /// `add_memory_driver_managed` (virtio-mem, dax/kmem). The DIMM link comes first because the
    /// kernel drops a DIMM's memory map entry while it removes the DIMM, perhaps before its
    /// offlines are read. Unknown (no memory map) counts as not.
    func driverManaged(_ id: DeviceID) -> Bool {
        guard id.kind == .memory, records[id]?.block?.firmwareNode == nil, let firmwareRAM else { return false }
        let start = id.index * blockSizeBytes
        let range = start...(start + blockSizeBytes - 1)
        return !firmwareRAM.contains { $0.overlaps(range) }
    }

    /// One line for the blocks drivers took back in this input, however many.
    mutating func sayTakenBackByDriver() {
        guard !takenBackByDriver.isEmpty else { return }
        let blocks = CPUList(takenBackByDriver.map { $0.index...$0.index })
        log(
            .info, "memory taken back by the driver that added it (virtio-mem, dax/kmem): not operator intent",
            ["blocks": "memory\(blocks)", "count": "\(takenBackByDriver.count)"], kind: .offline)
        takenBackByDriver = []
    }

    /// Drops the entry of a device that went online, was added anew or removed.
    mutating func forgetIntent(_ id: DeviceID, because reason: IntentDrop) {
        guard intent[id] != nil else { return }
        setIntent(id, nil)
        log(.info, "operator intent dropped", ["device": id.name, "reason": "\(reason)"])
    }

    /// After a reconfiguration that turned `enforce` on: the devices others took offline go online again.
    mutating func applyEnforce() {
        let overruled = intent.entries.filter { !honours($0.value, of: $0.key) }.map(\.key).sorted()
        for id in overruled {
            forgetIntent(id, because: .enforced(id.kind))
            records[id]?.managed = true
        }
        flushIntent()
        act(on: overruled)
    }

    private mutating func setIntent(_ id: DeviceID, _ entry: OperatorIntent.Entry?) {
        intent[id] = entry
        pendingIntent[id] = .some(entry)
    }

    /// Hands out the changes collected since the last time. A dry run stores nothing.
    mutating func flushIntent() {
        guard !pendingIntent.isEmpty else { return }
        if !options.dryRun { effects.append(.persistIntent(pendingIntent)) }
        pendingIntent = [:]
    }
}
