import Glibc
import HotplugCore

/// The fuzzed entry points: untrusted bytes in, and a trap (which libFuzzer reports with the
/// input) on a crash or on a broken promise. A thrown, typed error is a correct answer.
public enum FuzzTargets {
    /// A datagram as the monitor socket would deliver it, from the kernel and from udevd, down
    /// the monitor's own path: the datagram check, the four fields from the checked bytes, the
    /// decoder.
    public static func uevent(_ input: UnsafeBufferPointer<UInt8>) {
        let bytes = Array(input)
        let senders: [(MonitorSource, UeventDatagram.Sender)] = [
            (.kernel, .init(port: 0, groups: UeventDatagram.kernelGroup, uid: 0)),
            (.udev, .init(port: 1, groups: UeventDatagram.udevGroup, uid: 0)),
        ]
        for (source, sender) in senders {
            let datagram = UeventDatagram(bytes: bytes[...], length: bytes.count, sender: sender)
            let checked: Bool
            do {
                try datagram.check(source: source)
                checked = true
            } catch {
                checked = false
            }
            let raw: RawUevent
            do {
                raw = try datagram.fields(source: source)
            } catch {
                // `fields` checks first; past the check it refuses only copies that disagree.
                switch error {
                case .headerMismatch, .repeatedProperty: precondition(checked, "\(error) from an unchecked datagram")
                default: precondition(!checked, "fields refused a checked datagram: \(error)")
                }
                continue
            }
            precondition(checked, "fields from a datagram the check refused")
            if source == .kernel {
                // A kernel message's action and devpath are its header's, whatever its properties say.
                let header = String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
                let fields = raw.action.flatMap { action in raw.devpath.map { "\(action)@\($0)" } }
                precondition(fields == header, "fields differ from the header \(header)")
            }
            decode(raw)
        }
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

    private static func decode(_ raw: RawUevent) {
        guard let event = try? UeventDecoder.decode(raw) else { return }
        // Only a CPU's or memory block's own directory, named as the kernel names it, gets through.
        precondition(event.device.devpath == raw.devpath, "decoded device \(event.device) from \(raw.devpath ?? "-")")
        precondition(DeviceID(name: event.device.name) == event.device, "device name does not round-trip")
        precondition(event.device.kind.rawValue == raw.subsystem, "subsystem differs from the device's kind")
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
