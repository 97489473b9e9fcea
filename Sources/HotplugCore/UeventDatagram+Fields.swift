extension UeventDatagram {
    /// The four fields the decoder needs (ACTION, DEVPATH, SUBSYSTEM, SEQNUM), read from these
    /// bytes once `check(source:)` has passed on them: it runs first here, so no field can come
    /// from bytes that were not checked.
    ///
    /// A kernel message names its action and devpath twice, in the `ACTION@DEVPATH` header and
    /// as properties; a udev message only as properties. Copies that disagree (header and
    /// property, or a field given twice) mean a forged or corrupt message, which is refused
    /// rather than guessed at. A field that is missing is left nil, for `UeventDecoder` to reject.
    /// Other properties are not read: nothing downstream uses them.
    public func fields(source: MonitorSource) throws(UeventDatagramError) -> RawUevent {
        let properties = try checkedProperties(source: source)
        var fields = Fields()
        if source != .udev {
            // The check found "@/" in the header, which ends at the NUL before the properties.
            let header = bytes[..<(properties.lowerBound - 1)]
            guard let at = header.firstIndex(of: UInt8(ascii: "@")) else { throw .badKernelHeader }
            fields.header = [header[..<at], header[(at + 1)...]]
        }
        var position = properties.lowerBound
        while position < properties.upperBound {
            // The check made every property `KEY=VALUE\0`.
            let end = bytes[position...].firstIndex(of: 0) ?? properties.upperBound
            if let equals = bytes[position..<end].firstIndex(of: UInt8(ascii: "=")) {
                try fields.take(key: bytes[position..<equals], value: bytes[(equals + 1)..<end], offset: position)
            }
            position = end + 1
        }
        return fields.raw
    }
}

/// The fields found so far, as slices of the datagram.
private struct Fields {
    typealias Bytes = ArraySlice<UInt8>
    static let keys = ["ACTION", "DEVPATH", "SUBSYSTEM", "SEQNUM"].map { Array($0.utf8) }

    /// A kernel message's header: its ACTION and DEVPATH, in the order of `keys`.
    var header: [Bytes] = []
    /// Each of `keys`, as its first property gave it.
    var values: [Bytes?] = Array(repeating: nil, count: keys.count)

    mutating func take(key: Bytes, value: Bytes, offset: Int) throws(UeventDatagramError) {
        guard let index = Self.keys.firstIndex(where: { $0.elementsEqual(key) }) else { return }
        let name = Self.text(key)
        if index < header.count, !header[index].elementsEqual(value) {
            throw .headerMismatch(key: name, header: Self.text(header[index]), property: Self.text(value))
        }
        if let earlier = values[index] {
            guard earlier.elementsEqual(value) else { throw .repeatedProperty(key: name, offset: offset) }
        } else {
            values[index] = value
        }
    }

    /// The header's copy where there is one (a property, if present, is the same).
    var raw: RawUevent {
        func field(_ index: Int) -> String? { (index < header.count ? header[index] : values[index]).map(Self.text) }
        return RawUevent(action: field(0), devpath: field(1), subsystem: field(2), seqnum: field(3))
    }

    /// Invalid UTF-8 becomes U+FFFD, which no field the decoder accepts contains.
    static func text(_ bytes: Bytes) -> String { String(decoding: bytes, as: UTF8.self) }
}
