/// A set of CPU numbers written the kernel's way (`0-3,8,10-11`), as in `/sys/devices/system/cpu/online`
/// and the `isolcpus=` parameter. The word `all` stands for every CPU.
public struct CPUList: Sendable, Equatable, CustomStringConvertible {
    /// Inclusive ranges, sorted and merged.
    public private(set) var ranges: [ClosedRange<Int>]
    public let isAll: Bool

    public static let all = CPUList(isAll: true, ranges: [])
    public static let empty = CPUList(isAll: false, ranges: [])

    private init(isAll: Bool, ranges: [ClosedRange<Int>]) {
        self.isAll = isAll
        self.ranges = ranges
    }

    public init(_ ranges: [ClosedRange<Int>]) {
        self.init(isAll: false, ranges: Self.merged(ranges))
    }

    /// Parses `all`, the empty string, or comma-separated numbers and ranges `a-b`.
    public init(parsing text: String) throws(CPUListError) {
        let trimmed = text.trimmingWhitespace()
        if trimmed == "all" {
            self = .all
            return
        }
        var ranges: [ClosedRange<Int>] = []
        if !trimmed.isEmpty {
            for item in trimmed.split(separator: ",", omittingEmptySubsequences: false) {
                let bounds = item.trimmingWhitespace().split(separator: "-", omittingEmptySubsequences: false)
                guard (1...2).contains(bounds.count),
                    let low = Self.number(bounds[0]), let high = Self.number(bounds[bounds.count - 1]), low <= high
                else { throw CPUListError(text: text, item: String(item)) }
                ranges.append(low...high)
            }
        }
        self.init(isAll: false, ranges: Self.merged(ranges))
    }

    public func contains(_ cpu: Int) -> Bool {
        isAll || ranges.contains { $0.contains(cpu) }
    }

    public var description: String {
        if isAll { return "all" }
        return ranges.map { $0.count == 1 ? "\($0.lowerBound)" : "\($0.lowerBound)-\($0.upperBound)" }
            .joined(separator: ",")
    }

    private static func number(_ text: Substring) -> Int? {
        guard !text.isEmpty, text.utf8.count <= 7, text.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }) else { return nil }
        return Int(text)
    }

    private static func merged(_ ranges: [ClosedRange<Int>]) -> [ClosedRange<Int>] {
        var result: [ClosedRange<Int>] = []
        for range in ranges.sorted(by: { $0.lowerBound < $1.lowerBound }) {
            if let last = result.last, range.lowerBound <= last.upperBound + 1 {
                result[result.count - 1] = last.lowerBound...max(last.upperBound, range.upperBound)
            } else {
                result.append(range)
            }
        }
        return result
    }
}

public struct CPUListError: Error, Equatable, CustomStringConvertible {
    public let text: String
    public let item: String
    public var description: String {
        "\(item.debugDescription) in CPU list \(text.debugDescription) is not a number or a range a-b"
    }
}
