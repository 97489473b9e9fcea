import Glibc
import HotplugCore

/// The fuzzed entry points: untrusted bytes in, and a trap (which libFuzzer reports with the
/// input) on a crash or on a broken promise. A thrown, typed error is a correct answer.
public enum FuzzTargets {
    /// A datagram as the monitor socket would deliver it, from the kernel and from udevd: the
    /// datagram check, then the properties as libudev would hand them on, then the decoder. The
    /// decoder also gets the properties of every input, checked or not, so that it sees
    /// more than what gets past the check.
    public static func uevent(_ input: UnsafeBufferPointer<UInt8>) {
        let bytes = Array(input)
        let senders: [(MonitorSource, UeventDatagram.Sender)] = [
            (.kernel, .init(port: 0, groups: UeventDatagram.kernelGroup, uid: 0)),
            (.udev, .init(port: 1, groups: UeventDatagram.udevGroup, uid: 0)),
        ]
        for (source, sender) in senders {
            let datagram = UeventDatagram(bytes: bytes[...], length: bytes.count, sender: sender)
            guard (try? datagram.check(source: source)) != nil else { continue }
            // What passed the check is `KEY=VALUE\0` entries: each splits.
            guard let properties = properties(of: bytes, source: source) else {
                preconditionFailure("a checked datagram has a property without '='")
            }
            decode(properties)
        }
        decode(properties(of: bytes, source: nil) ?? [:])
    }

    /// A configuration file: parsed, or refused with a `ConfigError`; never a crash, and what
    /// parses keeps the promises the daemon relies on.
    public static func config(_ input: UnsafeBufferPointer<UInt8>) {
        guard let config = try? ConfigParser.parse(bytes: Array(input), file: "fuzz.toml") else { return }
        precondition(config.memory.autoMovableRatio >= 0, "negative ratio")
        for hook in config.hooks {
            precondition(hook.command.first?.hasPrefix("/") == true, "hook without an absolute program")
            precondition(!hook.events.isEmpty, "hook without events")
        }
    }

    /// Runs `target` on every file named, or in the directories named: a corpus replayed without
    /// libFuzzer, in an ordinary build.
    public static func replay(_ paths: some Sequence<String>, _ target: (UnsafeBufferPointer<UInt8>) -> Void) -> Int {
        var count = 0
        for path in paths {
            for file in Corpus.files(at: path) {
                guard let bytes = Corpus.read(file) else { continue }
                bytes.withUnsafeBufferPointer(target)
                count += 1
            }
        }
        return count
    }

    private static func decode(_ properties: [String: String]) {
        let raw = RawUevent(
            action: properties["ACTION"], devpath: properties["DEVPATH"], subsystem: properties["SUBSYSTEM"],
            seqnum: properties["SEQNUM"], properties: properties)
        guard let event = try? UeventDecoder.decode(raw) else { return }
        // Only a CPU's or memory block's own directory, named as the kernel names it, gets through.
        precondition(event.device.devpath == raw.devpath, "decoded device \(event.device) from \(raw.devpath ?? "-")")
        precondition(DeviceID(name: event.device.name) == event.device, "device name does not round-trip")
        precondition(event.device.kind.rawValue == raw.subsystem, "subsystem differs from the device's kind")
    }

    /// The NUL-separated `KEY=VALUE` entries after the header (libudev's header for udev, the
    /// `ACTION@DEVPATH` line for the kernel, none for `nil`); nil if an entry has no `=`.
    static func properties(of bytes: [UInt8], source: MonitorSource?) -> [String: String]? {
        var start = 0
        switch source {
        case .udev: start = bytes.count >= 20 ? Int(bytes[16]) | Int(bytes[17]) << 8 : bytes.count
        case .kernel, .auto: start = (bytes.firstIndex(of: 0) ?? bytes.count - 1) + 1
        case nil: start = 0
        }
        var properties: [String: String] = [:]
        for entry in bytes[min(start, bytes.count)...].split(separator: 0) {
            guard let equals = entry.firstIndex(of: UInt8(ascii: "=")) else { return nil }
            properties[String(decoding: entry[..<equals], as: UTF8.self)] = String(
                decoding: entry[(equals + 1)...], as: UTF8.self)
        }
        return properties
    }
}

#if FUZZING
/// libFuzzer's driver, for a program that has a `main` of its own (SwiftPM gives every
/// executable one, so libFuzzer's cannot be used).
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<Int32>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32
) -> Int32
#endif

extension FuzzTargets {
    /// The fuzz programs' `main`.
    public static func main(_ target: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32) -> Never {
        #if FUZZING
        var argc = CommandLine.argc
        var argv = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv, target))
        #else
        let count = replay(CommandLine.arguments.dropFirst()) { input in _ = target(input.baseAddress, input.count) }
        print("replayed \(count) inputs")
        exit(0)
        #endif
    }
}
