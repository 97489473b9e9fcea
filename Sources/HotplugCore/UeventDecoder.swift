/// Why a uevent was refused. Each case names the offending field so the log line says what was wrong.
public enum UeventDecodingError: Error, Equatable, CustomStringConvertible {
    case missingField(String)
    case unknownAction(String)
    case unsupportedSubsystem(String)
    case unexpectedDevpath(String)
    case subsystemMismatch(subsystem: String, devpath: String)
    case badSeqnum(String)

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
        }
    }
}

/// Turns untrusted monitor output into a `Uevent`, or says why not.
///
/// Only events about `/devices/system/cpu/cpuN` and `/devices/system/memory/memoryN` pass,
/// so nothing downstream can be steered to another sysfs path. The datagram's form (each
/// property's length, copies that agree) was checked before the fields were taken from it
/// (`UeventDatagram.fields(source:)`); this checks what the fields say.
public enum UeventDecoder {
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
        return Uevent(action: action, device: device, seqnum: seqnum, receivedAt: raw.receivedAt)
    }
}
