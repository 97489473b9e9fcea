extension ColdplugMode {
    /// Whether devices of `kind` found offline at start are to be onlined.
    ///
    /// With `auto`, CPUs are left alone when the kernel was booted with `maxcpus=`: the CPUs
    /// beyond that number are offline because the administrator asked for it, and a daemon
    /// must not undo a boot parameter. Memory has no such parameter, so `auto` means `always`.
    public func allows(_ kind: DeviceKind, kernelCommandLine: String) -> Bool {
        switch self {
        case .always: return true
        case .never: return false
        case .auto:
            guard kind == .cpu else { return true }
            return !kernelCommandLine.split(separator: " ").contains { $0.hasPrefix("maxcpus=") }
        }
    }
}
