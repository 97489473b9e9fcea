import FuzzTargets

/// libFuzzer's entry point.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    FuzzTargets.config(UnsafeBufferPointer(start: data, count: size))
    return 0
}

/// Built with -sanitize=fuzzer and -DFUZZING (`make fuzz`), libFuzzer's driver; otherwise a
/// replay of the corpus files or directories given as arguments.
@main struct Main {
    static func main() { FuzzTargets.main(fuzzOneInput) }
}
