/// Records: what a reading or an event does to a device, and the transitions it logs.
extension DecisionCore {
    /// Why a device changed state, as the transition's log line names it (`action=`).
    enum Cause: Sendable, Equatable {
        case scan
        case rescan
        case discover
        case write
        case event(UeventAction)

        var label: String {
            switch self {
            case .scan: "scan"
            case .rescan: "rescan"
            case .discover: "discover"
            case .write: "online"
            case .event(let action): action.rawValue
            }
        }
    }

    /// Who brought a block online, said on its transition line (`by=`) in kernel mode.
    enum Onliner: String, Sendable, Equatable {
        /// Inside its add, as hotplugd set it to (see `MemoryOnlining`).
        case kernel
        /// The kernel left it offline and hotplugd wrote it.
        case hotplugd
    }

    /// Whether, in kernel mode, the kernel is the one to online this device: a memory block
    /// added in this run (the kernel onlines only inside the add).
    func kernelOnlines(_ id: DeviceID) -> Bool {
        memoryOnlining.isKernel && id.kind == .memory && records[id]?.addedAt != nil
    }

    /// Takes in a whole scan: every device read, and those no longer there marked removed.
    mutating func learn(_ readings: Readings, cause: Cause) {
        if let size = readings.blockSizeBytes { pagesPerBlock = max(1, size / 4096) }
        for (id, reading) in readings.devices.sorted(by: { $0.key < $1.key }) {
            let wasOnline = records[id]?.state == .online
            take(reading, of: id, cause: cause)
            // Online when last seen, offline now, and the event lost: hotplugd never offlines, so
            // somebody else did, as if their `offline` event had arrived.
            if cause == .rescan, wasOnline, reading.state == .offline { takenOffline(id) }
        }
        // A scan that ended early says nothing about the devices it did not reach.
        guard readings.scanError == nil else { return }
        let gone = records.filter {
            readings.devices[$0.key] == nil && readings.failures[$0.key] == nil && $0.value.state != .removed
        }
        for id in gone.keys.sorted() {
            apply(.observed(.absent), to: id, cause: cause)
        }
    }

    /// Applies one reading of a device.
    mutating func take(_ reading: DeviceReading, of id: DeviceID, cause: Cause, by: Onliner? = nil) {
        if reading.state == .absent {
            if records[id] != nil { apply(.observed(.absent), to: id, cause: cause) }
            return
        }
        if let block = reading.block {
            setBlock(id, block)
        } else if id.kind == .cpu, records[id]?.cpuNode == nil {
            records[id, default: DeviceRecord()].cpuNode = reading.node
        }
        apply(.observed(reading.state), to: id, cause: cause, by: by)
    }

    /// Stores a fresh reading of a block.
    mutating func setBlock(_ id: DeviceID, _ block: MemoryBlock) {
        if block.node != nil { blocksHaveNodes = true }
        update(id) { $0.block = block }
    }

    /// Changes a record, keeping `movablePages` in step with it.
    mutating func update(_ id: DeviceID, _ change: (inout DeviceRecord) -> Void) {
        // In place: no copy of the record is taken out to look at it.
        let (before, after) = Self.changing(&records[id, default: DeviceRecord()], change)
        if let before { movablePages[before, default: 0] -= pagesPerBlock }
        if let after { movablePages[after, default: 0] += pagesPerBlock }
    }

    /// Changes a record and says the node its movable memory counted in before and after.
    private static func changing(
        _ record: inout DeviceRecord, _ change: (inout DeviceRecord) -> Void
    ) -> (before: Int?, after: Int?) {
        let before = movableNode(record)
        change(&record)
        return (before, movableNode(record))
    }

    /// The node whose movable memory a record counts in, if it is an online movable block.
    private static func movableNode(_ record: DeviceRecord) -> Int? {
        guard record.zone == .movable else { return nil }
        return record.node ?? 0
    }

    /// Feeds one input to the device's machine and reports the transition, if any. `at`: when an
    /// event was received, if it says (the times to online count from it); else `now`.
    @discardableResult
    mutating func apply(
        _ input: DeviceInput, to id: DeviceID, cause: Cause, value: OnlineValue? = nil, attempts: Int? = nil,
        by: Onliner? = nil, at: Instant? = nil
    ) -> Transition? {
        let at = at ?? now
        var applied: Transition?
        update(id) { applied = $0.machine.apply(input) }
        // `update` made the record if there was none.
        guard let transition = applied, records[id] != nil else { return nil }
        if transition.to == .failed {
            let wait = retries[id]?.next ?? options.firstRetry
            retries[id] = (at: now + wait, next: min(wait * 2, options.lastRetry))
        } else if transition.to != .onlining && transition.to != .offline {
            retries[id] = nil  // Online, removed, or not to be tried again (blocked).
        }
        if transition.to != .offline { kernelPending[id] = nil }  // The kernel, or somebody, got there.
        if transition.to == .removed {
            // Whatever comes back under this name is a new device: the daemon's, with no intent.
            waiting[id] = nil
            forgetIntent(id, because: .removed)
        }
        let onlinedByKernel = by == .kernel && transition.to == .online && cause != .write
        // What `hotplugd status` says of the device's state: since when, and the write's errno.
        let foundByScan = transition.from == .absent && transition.input != .event(.add)
        let stateSince = foundByScan || wallClockSeconds == 0 ? nil : wallClockSeconds
        // Edited in place: a DIMM's burst applies hundreds, and a copy taken out and put back
        // costs more than all of this.
        let (addedAt, record) = edit(id) { record in
            if transition.to == .removed { record.managed = true }
            // Also for blocks of a DIMM found before their own `add` uevent was read.
            if transition.input == .event(.add) {
                record.addedAt = at
                record.driverManaged = nil
            }
            let addedAt = record.addedAt
            if onlinedByKernel {
                if let addedAt { record.timeToOnline = at - addedAt }
                record.addedAt = nil
            }
            record.stateSince = stateSince
            switch transition.input {
            case .onlineFinished(.failed(let errno)), .onlineFinished(.blocked(let errno)): record.errno = errno
            default: record.errno = nil
            }
            if transition.to != .online { record.timeToOnline = nil }
            return (addedAt, LoggedRecord(record))
        }
        if transition.to == .online && id.kind == .memory && record.unclassified { unclassified.append(id) }
        if onlinedByKernel {
            // Counted as the kernel's onlining; a write's end is counted by `written`.
            effects.append(
                .finished(
                    OnlineOperation(
                        device: id, outcome: .succeeded, sinceAdded: addedAt.map { at - $0 }, byKernel: true)))
            if let addedAt { noteOnlineAfterAdd(id, addedAt: addedAt, onlineAt: at, byKernel: true) }
        }
        if let event = HookEvent(transition) {
            effects.append(
                .changed(DeviceChange(device: id, event: event, zone: record.zone?.rawValue, node: record.node)))
        }
        logTransition(id, transition, cause: cause, record: record, value: value, attempts: attempts, by: by)
        return transition
    }

    /// A record's edit in place: `body` gets the record of `id`, which exists.
    private mutating func edit<R>(_ id: DeviceID, _ body: (inout DeviceRecord) -> R) -> R {
        body(&records[id]!)
    }

    /// What a transition's line, hook and classification need of the record, taken once.
    private struct LoggedRecord {
        var zone: Zone?
        var node: Int?
        var takenByDriver: Bool
        /// An online memory block not yet known to be a driver's memory or not.
        var unclassified: Bool

        init(_ record: DeviceRecord) {
            zone = record.zone
            node = record.node
            takenByDriver = record.takenByDriver
            unclassified = record.driverManaged == nil
        }
    }

    /// One line per transition: device, action, from, to, zone, node, value, attempts, and the errno
    /// when onlining failed. Failures are errors, refusals (EPERM) warnings, the rest info. A
    /// scan's first sight of a device and the start of a write (its outcome follows) are debug.
    private mutating func logTransition(
        _ id: DeviceID, _ transition: Transition, cause: Cause, record: LoggedRecord, value: OnlineValue?,
        attempts: Int?, by: Onliner?
    ) {
        // A driver's own memory going away is said once per burst (`sayTakenBackByDriver`).
        let drivers = record.takenByDriver && (transition.to == .removed || transition.from == .online)
        let quiet =
            (transition.from == .absent && transition.input != .event(.add)) || transition.to == .onlining || drivers
        var level: LogRecord.Level = quiet ? .debug : .info
        var errno: Int32?
        if case .onlineFinished(let outcome) = transition.input {
            switch outcome {
            case .failed(let failed):
                errno = failed
                level = .error
            case .blocked(let refused):
                errno = refused
                level = .warning
            case .succeeded, .gone:
                break
            }
        }
        // Before any of the line is made: a DIMM's burst has a debug transition per block.
        if level == .debug && !options.logsDebug { return }
        var metadata = [
            "device": id.name, "action": cause.label, "from": transition.from.rawValue, "to": transition.to.rawValue,
        ]
        if let errno { metadata["errno"] = "\(errno)" }
        if let zone = record.zone, transition.to == .online { metadata["zone"] = zone.rawValue }
        if let node = record.node { metadata["node"] = "\(node)" }
        if let value { metadata["value"] = value.rawValue }
        if let attempts, attempts > 1 { metadata["attempts"] = "\(attempts)" }
        if let by, transition.to == .online { metadata["by"] = by.rawValue }
        log(level, "\(id) \(transition)", metadata, kind: LogKind(transition))
    }
}
