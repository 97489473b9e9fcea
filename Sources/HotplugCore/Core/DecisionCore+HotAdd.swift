/// The last hot-add as operators think of it: one DIMM, one virtio-mem resize, a few vCPUs, not
/// one block. Devices that come online after their `add` events are taken as one hot-add as long
/// as each was added before the previous one was online (plus a second, for the event's way to
/// the daemon); the first device added after a quiet second starts the next.
struct HotAddSpan: Sendable, Equatable {
    var kind: DeviceKind
    var lowest: Int
    var highest: Int
    var devices: Int
    var firstAdd: ContinuousClock.Instant
    var lastOnline: ContinuousClock.Instant
    var finished: Int
    var allByKernel: Bool

    static let gap = Duration.seconds(1)
}

extension DecisionCore {
    /// A device came online after its `add`: it is part of the last hot-add or starts a new one.
    mutating func noteOnlineAfterAdd(
        _ id: DeviceID, addedAt: ContinuousClock.Instant, onlineAt: ContinuousClock.Instant, byKernel: Bool
    ) {
        if var span = lastHotAddSpan, span.kind == id.kind, addedAt <= span.lastOnline + HotAddSpan.gap {
            span.lowest = min(span.lowest, id.index)
            span.highest = max(span.highest, id.index)
            span.devices += 1
            span.firstAdd = min(span.firstAdd, addedAt)
            span.lastOnline = max(span.lastOnline, onlineAt)
            span.finished = wallClockSeconds
            span.allByKernel = span.allByKernel && byKernel
            lastHotAddSpan = span
        } else {
            lastHotAddSpan = HotAddSpan(
                kind: id.kind, lowest: id.index, highest: id.index, devices: 1, firstAdd: addedAt,
                lastOnline: onlineAt, finished: wallClockSeconds, allByKernel: byKernel)
        }
    }

    /// The last hot-add whose devices came online, for `hotplugd status`.
    public var lastHotAdd: HotAdd? {
        guard let span = lastHotAddSpan, let first = DeviceID(kind: span.kind, index: span.lowest),
            let last = DeviceID(kind: span.kind, index: span.highest)
        else { return nil }
        return HotAdd(
            kind: span.kind, firstDevice: first.name, lastDevice: last.name, devices: span.devices,
            secondsToOnline: (span.lastOnline - span.firstAdd).seconds, finished: span.finished,
            onlinedBy: span.allByKernel ? Onliner.kernel.rawValue : Onliner.hotplugd.rawValue)
    }
}

extension Duration {
    /// The duration in seconds, as a `Double`.
    var seconds: Double {
        let (whole, attoseconds) = components
        return Double(whole) + Double(attoseconds) / 1e18
    }
}
