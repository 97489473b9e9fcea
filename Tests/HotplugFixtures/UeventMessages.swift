/// Uevent datagrams as they travel on the NETLINK_KOBJECT_UEVENT socket, built byte by byte:
/// for tests that forge them, the datagram check's tests, and the fuzzer's seed corpus.
public enum UeventMessages {
    /// A message as udevd broadcasts it: libudev's header, then `KEY=VALUE\0` properties.
    /// The header carries the subsystem's hash, which the monitor's socket filter checks.
    public static func udev(_ properties: [String: String], extra: String? = nil) -> [UInt8] {
        var body: [UInt8] = []
        for (key, value) in properties.sorted(by: { $0.key < $1.key }) { body += Array("\(key)=\(value)".utf8) + [0] }
        if let extra { body += Array(extra.utf8) + [0] }
        var header: [UInt8] = Array("libudev".utf8) + [0]
        header += bigEndian(0xfeed_cafe) + littleEndian(40) + littleEndian(40) + littleEndian(UInt32(body.count))
        header += bigEndian(murmur2(properties["SUBSYSTEM"] ?? "")) + bigEndian(0) + bigEndian(0) + bigEndian(0)
        return header + body
    }

    /// A message as the kernel broadcasts it: `ACTION@DEVPATH\0`, then the properties.
    public static func kernel(_ action: String, _ properties: [String: String]) -> [UInt8] {
        var message = Array("\(action)@\(properties["DEVPATH"] ?? "")".utf8) + [0]
        for (key, value) in properties.sorted(by: { $0.key < $1.key }) {
            message += Array("\(key)=\(value)".utf8) + [0]
        }
        return message
    }

    public static func bigEndian(_ value: UInt32) -> [UInt8] {
        (0..<4).map { UInt8(truncatingIfNeeded: value >> (24 - 8 * $0)) }
    }
    public static func littleEndian(_ value: UInt32) -> [UInt8] {
        (0..<4).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) }
    }

    /// MurmurHash2 with seed 0, the hash libudev puts in the header and its socket filter compares.
    public static func murmur2(_ text: String) -> UInt32 {
        let data = Array(text.utf8)
        let m: UInt32 = 0x5bd1_e995
        var h = UInt32(truncatingIfNeeded: data.count)
        var index = 0
        while data.count - index >= 4 {
            var k =
                UInt32(data[index]) | UInt32(data[index + 1]) << 8 | UInt32(data[index + 2]) << 16
                | UInt32(data[index + 3]) << 24
            k &*= m
            k ^= k >> 24
            k &*= m
            h &*= m
            h ^= k
            index += 4
        }
        let rest = data.count - index
        if rest >= 3 { h ^= UInt32(data[index + 2]) << 16 }
        if rest >= 2 { h ^= UInt32(data[index + 1]) << 8 }
        if rest >= 1 {
            h ^= UInt32(data[index])
            h &*= m
        }
        h ^= h >> 13
        h &*= m
        h ^= h >> 15
        return h
    }
}
