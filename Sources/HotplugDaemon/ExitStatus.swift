/// How every `hotplugd` command exits; hotplugd(8) lists these under EXIT STATUS. One set, so that
/// a script or a unit can tell a refusal from a mistake in the command line or in the file.
public enum ExitStatus: Int32, Sendable {
    /// Done.
    case ok = 0
    /// Refused or failed, nothing left changed; also any failure not listed here (sysfs unreadable).
    case failed = 1
    /// Partly done: a device changed before a failure could not be put back.
    case partial = 3
    /// EX_USAGE: an unknown option, a CPU list or range that does not parse, a device that is not there.
    case usage = 64
    /// EX_CONFIG: the configuration file is invalid, or missing when named explicitly. The unit
    /// lists it in RestartPreventExitStatus=: restarting cannot fix a file.
    case config = 78
    /// 128 + the signal, as a shell reports it: `offline`/`online` stopped by SIGINT or SIGTERM
    /// at the device it was on, and put back what it had changed.
    case interrupted = 130
    case terminated = 143
}
