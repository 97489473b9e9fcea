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
    ///
    /// A file that cannot be read whole fails closed: the entries read before stay (with those of
    /// its good lines), and no device found offline is onlined until the file reads whole again
    /// (`intentTrusted`), since any of them may be one it keeps offline. Said once each time the
    /// file goes bad, with its first bad lines, and once when it is whole again.
    mutating func takeIntent(_ reading: IntentReading) {
        let wasTrusted = intentTrusted
        switch reading {
        case .loaded(let loaded, let badLines) where badLines.isEmpty:
            intent = loaded
            intentTrusted = true
        case .loaded(let loaded, let badLines):
            for (id, entry) in loaded.entries { intent[id] = entry }
            intentTrusted = false
            if wasTrusted {
                for bad in badLines.prefix(5) {
                    log(.error, "a line of the intent file is not an entry", ["error": "\(bad)"])
                }
                sayIntentUntrusted("\(badLines.count) lines are not entries")
            }
        case .unreadable(let error):
            intentTrusted = false
            if wasTrusted { sayIntentUntrusted(error) }
        }
        for (id, change) in pendingIntent { intent[id] = change }
        if intentTrusted && !wasTrusted {
            log(.notice, "the intent file reads whole again; devices offline are decided by it", kind: .intent)
            squareIntent()
            act(on: records.filter { $0.value.state == .offline }.map(\.key))
        }
    }

    private mutating func sayIntentUntrusted(_ error: String) {
        log(
            .error,
            "cannot read the intent file whole: devices found offline stay offline until it can be, since any may be kept offline by it",
            ["error": error, "entries": "\(intent.entries.count)"], kind: .intent)
    }

    /// While the intent file cannot be read whole, only devices added in this run are onlined.
    func mayOnline(_ id: DeviceID) -> Bool {
        intentTrusted || records[id]?.addedAt != nil
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

    /// Whether a memory block is memory a driver added and manages itself, as classified when
    /// it came online.
    func driverManaged(_ id: DeviceID) -> Bool {
        records[id]?.driverManaged == true
    }

    /// Classifies the blocks that came online in this input: memory a driver added and manages
    /// (virtio-mem, dax/kmem) is in no "System RAM" range of the firmware's memory map, which
    /// lists boot memory and ACPI DIMMs but never memory added with `add_memory_driver_managed`.
    /// Judged when a block comes online, since a DIMM's entry is there from the end of its add
    /// (before any block of it can be online) until its removal begins (perhaps before its
    /// offlines are read). A block the map known so far does not cover has the map read again:
    /// once for a row of writes, after the last is answered, not once per block (a virtio-mem
    /// block is in no entry, and each reading is a listing of the map: in a 1-vCPU TCG guest the
    /// four of a virtio-mem batch took 10 ms, which the next batch's writes waited for).
    mutating func classifyOnlined() {
        guard !unclassified.isEmpty, writesInFlight == 0 else { return }
        let ids = unclassified
        unclassified = []
        var uncovered: [DeviceID] = []
        for id in ids where records[id]?.driverManaged == nil {
            if covered(id) || (firmwareRAMRead && firmwareRAM == nil) {
                classify(id)
            } else {
                uncovered.append(id)
            }
        }
        if !uncovered.isEmpty { effects.append(.read(ReadRequest(.firmwareRAM, for: .classify(uncovered)))) }
    }

    mutating func classify(_ id: DeviceID) {
        guard records[id] != nil else { return }
        let managedByDriver = firmwareRAM != nil && !covered(id)
        records[id]?.driverManaged = managedByDriver
    }

    private func covered(_ id: DeviceID) -> Bool {
        guard let firmwareRAM else { return false }
        let start = id.index * blockSizeBytes
        let range = start...(start + blockSizeBytes - 1)
        return firmwareRAM.contains { $0.overlaps(range) }
    }

    /// One line for the blocks drivers took back in this input, however many.
    mutating func sayTakenBackByDriver() {
        guard !takenBackByDriver.isEmpty else { return }
        log(
            .info, "memory taken back by the driver that added it (virtio-mem, dax/kmem): not operator intent",
            ["blocks": DeviceID.runs(takenBackByDriver), "count": "\(takenBackByDriver.count)"], kind: .offline)
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
