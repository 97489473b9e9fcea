/// Why a uevent was refused. Each case names the offending field so the log line says what was wrong.
public enum UeventDecodingError: Error, Equatable, CustomStringConvertible {
    case missingField(String)
    case unknownAction(String)
    case unsupportedSubsystem(String)
    case unexpectedDevpath(String)
    case subsystemMismatch(subsystem: String, devpath: String)
    case badSeqnum(String)
    case propertyMismatch(key: String, value: String)
    case oversizedProperty(key: String)

    public var description: String {
        switch self {
        case .missingField(let field): "missing \(field)"
        case .unknownAction(let action): "unknown action \(action.debugDescription)"
        case .unsupportedSubsystem(let subsystem): "subsystem \(subsystem.debugDescription) is not cpu or memory"
        case .unexpectedDevpath(let devpath):
            "devpath \(devpath.debugDescription) is not /devices/system/cpu/cpuN or /devices/system/memory/memoryN"
        case .subsystemMismatch(let subsystem, let devpath):
            "subsystem \(subsystem.debugDescription) does not match devpath \(devpath.debugDescription)"
        case .badSeqnum(let seqnum): "SEQNUM \(seqnum.debugDescription) is not a decimal number"
        case .propertyMismatch(let key, let value): "property \(key)=\(value.debugDescription) contradicts the event"
        case .oversizedProperty(let key): "property \(key.debugDescription) exceeds the kernel's uevent size"
        }
    }
}

/// Turns untrusted monitor output into a `Uevent`, or says why not.
///
/// Only events about `/devices/system/cpu/cpuN` and `/devices/system/memory/memoryN` pass,
/// so nothing downstream can be steered to another sysfs path.
public enum UeventDecoder {
    /// The kernel's uevent buffer (UEVENT_BUFFER_SIZE); no single field can be longer.
    static let maxFieldLength = 2048

    public static func decode(_ raw: RawUevent) throws(UeventDecodingError) -> Uevent {
        guard let actionName = raw.action else { throw .missingField("ACTION") }
        guard let action = UeventAction(rawValue: actionName) else { throw .unknownAction(actionName) }
        guard let subsystem = raw.subsystem else { throw .missingField("SUBSYSTEM") }
        guard let kind = DeviceKind(rawValue: subsystem) else { throw .unsupportedSubsystem(subsystem) }
        guard let devpath = raw.devpath else { throw .missingField("DEVPATH") }
        guard let device = DeviceID(devpath: devpath) else { throw .unexpectedDevpath(devpath) }
        guard device.kind == kind else { throw .subsystemMismatch(subsystem: subsystem, devpath: devpath) }
        guard let seqnumText = raw.seqnum else { throw .missingField("SEQNUM") }
        guard seqnumText.utf8.count <= 20, seqnumText.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }),
            let seqnum = UInt64(seqnumText)
        else { throw .badSeqnum(seqnumText) }

        for (key, value) in raw.properties {
            guard key.utf8.count + value.utf8.count < maxFieldLength else { throw .oversizedProperty(key: key) }
        }
        // libudev repeats the header fields as properties; a message whose copies disagree was forged or corrupted.
        let expected = ["ACTION": actionName, "DEVPATH": devpath, "SUBSYSTEM": subsystem, "SEQNUM": seqnumText]
        for (key, value) in expected {
            if let copy = raw.properties[key], copy != value { throw .propertyMismatch(key: key, value: copy) }
        }
        return Uevent(action: action, device: device, seqnum: seqnum, properties: raw.properties)
    }
}
