import HotplugCore

/// Operator intent: devices somebody took offline stay offline (see `OperatorIntent`).
///
/// Changes are collected while a batch is handled and written once at its end, as deltas under
/// the store's lock, so `hotplugd offline` running at the same time keeps its own entries.
extension Engine {
    /// Reads the intent file and squares it with the scan: entries of devices that are gone or
    /// online are dropped, and so are those `enforce` overrules; the rest keep their device offline.
    func loadIntent() {
        reloadIntent()
        for (id, entry) in intent.entries {
            let state = records[id]?.state ?? .absent
            if state == .absent || state == .removed {
                forgetIntent(id, reason: "the device is gone")
            } else if state == .online {
                forgetIntent(id, reason: "the device is online")
            } else if !honours(entry, of: id) {
                forgetIntent(id, reason: "enforce is set for \(id.kind) devices")
            } else {
                records[id]!.managed = false
            }
        }
        saveIntent()
    }

    /// Re-reads the file, which `hotplugd offline` writes before it offlines anything.
    func reloadIntent() {
        guard let intentStore else { return }
        do {
            let (loaded, badLines) = try intentStore.load()
            for bad in badLines {
                log.logger.error(
                    "ignoring a line of the intent file", metadata: ["path": "\(intentStore.path)", "error": "\(bad)"])
            }
            intent = loaded
            for (id, change) in pendingIntent { intent[id] = change }
        } catch {
            log.logger.error(
                "cannot read the intent file; no device is kept offline by it",
                metadata: ["path": "\(intentStore.path)", "error": "\(error)"])
        }
    }

    /// Offline devices that intent keeps offline.
    public var keptOffline: Int {
        intent.entries.filter { records[$0.key]?.state == .offline && honours($0.value, of: $0.key) }.count
    }

    /// `enforce` overrules what others did, never `hotplugd offline`, which prepares a removal.
    func honours(_ entry: OperatorIntent.Entry, of id: DeviceID) -> Bool {
        entry.origin == .command || !config.enforces(id.kind)
    }

    /// An `offline` event hotplugd did not cause, for a device it had online.
    func takenOffline(_ id: DeviceID) {
        if let entry = intent[id], honours(entry, of: id) {
            records[id]!.managed = false
            return
        }
        if config.enforces(id.kind) {
            log.logger.notice(
                "taken offline by somebody else; enforce is set, so it goes online again",
                metadata: ["device": "\(id)", "kind": "enforce"])
            return
        }
        records[id]!.managed = false
        let entry = OperatorIntent.Entry(origin: .observed, since: IntentStore.now)
        setIntent(id, entry)
        log.logger.notice(
            "taken offline by somebody else: kept offline until somebody onlines it",
            metadata: ["device": "\(id)", "kind": "intent", "intent": "\(entry.origin.rawValue)"])
    }

    /// Drops the entry of a device that went online, was added anew or removed.
    func forgetIntent(_ id: DeviceID, reason: String) {
        guard intent[id] != nil else { return }
        setIntent(id, nil)
        log.logger.info("operator intent dropped", metadata: ["device": "\(id)", "reason": "\(reason)"])
    }

    /// After a reload that turned `enforce` on: the devices others took offline go online again.
    func applyEnforce() {
        let overruled = intent.entries.filter { !honours($0.value, of: $0.key) }.map(\.key)
        for id in overruled {
            forgetIntent(id, reason: "enforce is set for \(id.kind) devices")
            records[id]?.managed = true
        }
        saveIntent()
        act(on: overruled)
    }

    private func setIntent(_ id: DeviceID, _ entry: OperatorIntent.Entry?) {
        intent[id] = entry
        pendingIntent[id] = .some(entry)
    }

    /// Writes the changes collected since the last save. A dry run writes nothing.
    func saveIntent() {
        guard !pendingIntent.isEmpty else { return }
        let changes = pendingIntent
        pendingIntent = [:]
        guard let intentStore, !options.dryRun else { return }
        do {
            try intentStore.update { stored in
                for (id, entry) in changes { stored[id] = entry }
            }
        } catch {
            log.logger.error(
                "cannot write the intent file; the change holds until the daemon stops",
                metadata: ["path": "\(intentStore.path)", "error": "\(error)"])
        }
    }
}
