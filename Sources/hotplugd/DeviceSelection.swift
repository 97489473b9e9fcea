import ArgumentParser
import HotplugCore
import HotplugDaemon

/// `hotplugd offline cpu 2 3 8-11`: the CPU numbers. Like the memory selection, checked twice,
/// the syntax before anything is read and then against the devices present; either failing is
/// bad usage, so that 1 always means the kernel or a safety check said no.
struct CPUSelection {
    let list: CPUList

    init(_ arguments: [String]) throws(ValidationError) {
        let text = arguments.joined(separator: ",")
        // CPUList calls a reversed range merely "not a range"; the operator deserves the reason.
        for item in text.split(separator: ",") {
            let bounds = item.split(separator: "-").map { Int($0.trimmingWhitespace()) }
            if bounds.count == 2, let low = bounds[0], let high = bounds[1], low > high {
                throw ValidationError("CPU range \(item) is reversed: the first CPU is above the last")
            }
        }
        do {
            list = try CPUList(parsing: text)
        } catch {
            throw ValidationError("\(error)")
        }
    }

    /// The CPUs named (`all`: every one present); a CPU that is not there is an error naming it.
    func devices(in present: [DeviceStatus]) throws(ValidationError) -> [DeviceID] {
        let indices = present.filter { $0.kind == .cpu }.map(\.index).sorted()
        let chosen = indices.filter(list.contains)
        var missing: [ClosedRange<Int>] = []
        for range in list.ranges {
            var next = range.lowerBound
            for index in indices where range.contains(index) {
                if index > next { missing.append(next...(index - 1)) }
                next = index + 1
            }
            if next <= range.upperBound { missing.append(next...range.upperBound) }
        }
        guard missing.isEmpty else { throw ValidationError("no such CPU: \(CPUList(missing))") }
        guard !chosen.isEmpty else { throw ValidationError("no CPU given") }
        return chosen.compactMap { DeviceID(kind: .cpu, index: $0) }
    }
}

/// `--range`: block numbers (`32-35`, `32`), addresses the way lsmem(1) and `hotplugd status`
/// print them (`0x100000000-0x17fffffff`), which operators paste, or a start address and a size
/// as chmem(8) takes sizes (`0x100000000+2G`); addresses become blocks once the block size is read.
enum MemoryRange: Equatable {
    case blocks(ClosedRange<Int>)
    case addresses(ClosedRange<Int>)

    static let syntax = ValidationError(
        "--range must be block numbers (A-B or A), addresses as status shows them (0x100000000-0x17fffffff), "
            + "or a start address and a size (0x100000000+2G; K, M, G, T)")

    init(parsing text: String) throws(ValidationError) {
        if let plus = text.firstIndex(of: "+") {
            guard let start = Self.address(text[..<plus]), let size = Self.size(text[text.index(after: plus)...]),
                size > 0, start <= Int.max - (size - 1)
            else { throw Self.syntax }
            self = .addresses(start...(start + size - 1))
            return
        }
        let bounds = text.split(separator: "-", omittingEmptySubsequences: false)
        guard (1...2).contains(bounds.count) else { throw Self.syntax }
        let hex = bounds[0].lowercased().hasPrefix("0x")
        let numbers = bounds.map { hex ? Self.address($0) : Self.block($0) }
        guard let low = numbers.first!, let high = numbers.last! else { throw Self.syntax }
        guard low <= high else {
            throw ValidationError(
                "--range \(text) is reversed: the first \(hex ? "address" : "block") is above the last")
        }
        self = hex ? .addresses(low...high) : .blocks(low...high)
    }

    /// The block numbers. Addresses must be whole blocks, from the start of one to the last byte
    /// of one, as status prints them: a range cutting into a block would take all of it.
    func blocks(blockSize: Int) throws(ValidationError) -> ClosedRange<Int> {
        switch self {
        case .blocks(let range):
            return range
        case .addresses(let range):
            let single = range.lowerBound == range.upperBound
            guard range.lowerBound % blockSize == 0, single || range.upperBound % blockSize == blockSize - 1 else {
                throw ValidationError(
                    "--range: addresses must be whole memory blocks of 0x\(String(blockSize, radix: 16)) bytes, "
                        + "from the start of one to the last byte of one")
            }
            return (range.lowerBound / blockSize)...(range.upperBound / blockSize)
        }
    }

    private static func block(_ text: Substring) -> Int? {
        guard !text.isEmpty, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        return Int(text)
    }

    /// `2G`, `512M`, `134217728`: binary units, as chmem(8) and lsmem(1) mean them.
    private static func size(_ text: Substring) -> Int? {
        let units: [Character: Int] = ["K": 10, "M": 20, "G": 30, "T": 40]
        guard let last = text.last else { return nil }
        let shift = units[Character(last.uppercased())]
        guard let number = block(shift == nil ? text : text.dropLast()) else { return nil }
        let (value, overflow) = number.multipliedReportingOverflow(by: 1 << (shift ?? 0))
        return overflow ? nil : value
    }

    private static func address(_ text: Substring) -> Int? {
        guard text.lowercased().hasPrefix("0x") else { return nil }
        let digits = text.dropFirst(2)
        guard (1...16).contains(digits.count), digits.allSatisfy(\.isHexDigit) else { return nil }
        return Int(digits, radix: 16)
    }
}

struct MemorySelection: ParsableArguments {
    @Option(help: "The ACPI memory device, as `hotplugd status` shows it (e.g. PNP0C80:00).") var dimm: String?
    @Option(help: "Every hot-pluggable block of a NUMA node.") var node: Int?
    @Option(
        help: ArgumentHelp(
            "Block numbers, A-B or A; addresses as status and lsmem print them (0x100000000-0x17fffffff); "
                + "or a start address and a size (0x100000000+2G). Addresses must cover whole blocks.",
            valueName: "range"))
    var range: String?

    func validate() throws {
        if [dimm != nil, node != nil, range != nil].filter({ $0 }).count != 1 {
            throw ValidationError("give exactly one of --dimm, --node, --range")
        }
        if let range { _ = try MemoryRange(parsing: range) }
    }

    /// What the selection left out of what its words might suggest, to be said before acting:
    /// `--node` leaves out the node's boot memory.
    func leftOut(in present: [DeviceStatus]) -> String? {
        guard let node else { return nil }
        let boot = present.filter { $0.kind == .memory && $0.node == node && $0.dimm == nil }.count
        guard boot > 0 else { return nil }
        return "--node \(node) leaves out its \(boot) block\(boot == 1 ? "" : "s") of boot memory (of no DIMM, "
            + "not hot-pluggable); --range selects blocks by number"
    }

    /// The blocks selected among those present; none is an error.
    func devices(in present: [DeviceStatus], blockSize: Int) throws(ValidationError) -> [DeviceID] {
        let blocks = present.filter { $0.kind == .memory }
        let chosen: [DeviceStatus]
        let named: String
        if let dimm {
            chosen = blocks.filter { $0.dimm == dimm }
            named = "--dimm \(dimm)"
        } else if let node {
            // Boot memory is not hot-pluggable: a node's blocks means those of its DIMMs.
            chosen = blocks.filter { $0.node == node && $0.dimm != nil }
            named = "--node \(node)"
        } else {
            // `validate()` made sure that one of the three is given.
            let text = range ?? ""
            let numbers = try MemoryRange(parsing: text).blocks(blockSize: blockSize)
            chosen = blocks.filter { numbers.contains($0.index) }
            named = "--range \(text)"
        }
        if chosen.isEmpty, let node {
            let boot = blocks.filter { $0.node == node && $0.dimm == nil }.count
            if boot > 0 {
                throw ValidationError(
                    "--node \(node): its \(boot) memory block\(boot == 1 ? " is" : "s are") boot memory, of no DIMM, "
                        + "which --node leaves out (boot memory is not hot-pluggable); --range selects blocks by number"
                )
            }
        }
        guard !chosen.isEmpty else { throw ValidationError("no memory block matches \(named)") }
        return chosen.compactMap { DeviceID(kind: .memory, index: $0.index) }
    }
}
