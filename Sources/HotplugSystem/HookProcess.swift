import CHotplug
import Glibc

/// One run of a hook's command, from start to the end of its process group: blocking, for a
/// thread of its own.
///
/// The command starts without the daemon's powers (`chotplug_spawn_hook`: its own process group,
/// the default OOM score, no capabilities). Its output (stdout and stderr together) is handed on
/// line by line, each line cut at `lineLimit` bytes with a marker, so no line is too long to log
/// and none costs more memory than that. The run ends when the command exits: a background child
/// that keeps the output open is not waited for. At the timeout, or when `stop` is signalled, the
/// whole group gets SIGTERM, then SIGKILL after `grace`.
public enum HookProcess {
    public enum Outcome: Sendable, Equatable {
        case exited(Int32)
        case signaled(Int32)
        case timedOut
        /// `stop` was signalled before the command ended; the group was stopped.
        case stopped
        case couldNotStart(String)
    }

    public static func run(
        command: [String], environment: [String: String], timeout: Duration, grace: Duration,
        stop: Int32, lineLimit: Int = 1000, line: (String) -> Void
    ) -> Outcome {
        guard let path = command.first else { return .couldNotStart("empty command") }
        var pipeFDs: [Int32] = [-1, -1]
        // Not pipe2(2), which Glibc's module hides: close-on-exec is set just after, and the only
        // fork, `chotplug_spawn_hook`, closes every other descriptor in the child anyway.
        guard pipe(&pipeFDs) == 0 else { return .couldNotStart(errorText(errno)) }
        for fd in pipeFDs { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        let (output, input) = (pipeFDs[0], pipeFDs[1])
        let pid = spawn(path: path, arguments: command, environment: environment, output: input)
        let spawnError = errno
        closeOurs(input)
        guard pid > 0 else {
            closeOurs(output)
            return .couldNotStart(errorText(spawnError))
        }
        var lines = LineSplitter(limit: lineLimit)
        let ended = wait(for: pid, output: output, timeout: timeout, grace: grace, stop: stop) { bytes in
            for text in lines.append(bytes) { line(text) }
        }
        closeOurs(output)
        if let last = lines.finish() { line(last) }
        return ended
    }

    /// Forks and execs with C strings made before the fork (nothing may be allocated after it).
    private static func spawn(path: String, arguments: [String], environment: [String: String], output: Int32) -> Int32
    {
        let argv = arguments.map { strdup($0) } + [nil]
        let envp = environment.sorted { $0.key < $1.key }.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for pointer in argv + envp { free(pointer) }
        }
        return chotplug_spawn_hook(path, argv, envp, output)
    }

    /// Where a run is: the command running until its deadline, its group asked to stop (SIGTERM)
    /// until `killAt`, or killed (SIGKILL) and waited for.
    private enum Phase {
        case running
        case terminating(Outcome, killAt: ContinuousClock.Instant)
        case killed(Outcome)
    }

    /// Reads output until the command exits, and stops its group at the timeout or at `stop`.
    private static func wait(
        for pid: Int32, output: Int32, timeout: Duration, grace: Duration, stop: Int32,
        received: (ArraySlice<UInt8>) -> Void
    ) -> Outcome {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        // Without pidfd (before Linux 5.3) the exit is looked for every 50 ms.
        let exitFD = chotplug_pidfd_open(pid)
        defer { if exitFD >= 0 { closeOurs(exitFD) } }
        var outputOpen = true
        var phase = Phase.running
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            if let status = reap(pid) {
                // The command is done: what it wrote before is in the pipe; nothing after is waited for.
                if outputOpen { drain(output, buffer: &buffer, received: received) }
                switch phase {
                case .running: return status
                case .terminating(let why, _), .killed(let why):
                    kill(-pid, SIGKILL)  // Whatever of the group is left goes with it.
                    return why
                }
            }
            let now = clock.now
            var until: ContinuousClock.Instant?
            switch phase {
            case .running where now >= deadline:
                kill(-pid, SIGTERM)
                phase = .terminating(.timedOut, killAt: now + grace)
                until = now + grace
            case .running:
                until = deadline
            case .terminating(let why, let killAt) where now >= killAt:
                kill(-pid, SIGKILL)
                phase = .killed(why)
            case .terminating(_, let killAt):
                until = killAt
            case .killed:
                break
            }
            var fds = [pollfd(fd: stop, events: Int16(POLLIN), revents: 0)]
            if outputOpen { fds.append(pollfd(fd: output, events: Int16(POLLIN), revents: 0)) }
            if exitFD >= 0 { fds.append(pollfd(fd: exitFD, events: Int16(POLLIN), revents: 0)) }
            let longest: Duration = exitFD >= 0 ? .seconds(60) : .milliseconds(50)
            let wait = min(longest, max(.zero, (until ?? now + longest) - now))
            let milliseconds =
                Int32(wait.components.seconds * 1000 + wait.components.attoseconds / 1_000_000_000_000_000) + 1
            guard poll(&fds, nfds_t(fds.count), milliseconds) > 0 else { continue }
            if fds[0].revents != 0, case .running = phase {
                kill(-pid, SIGTERM)
                phase = .terminating(.stopped, killAt: clock.now + grace)
            }
            if outputOpen, fds[1].revents != 0 {
                let count = read(output, &buffer, buffer.count)
                if count > 0 {
                    received(buffer[..<count])
                } else if count == 0 || (errno != EINTR && errno != EAGAIN) {
                    outputOpen = false
                }
            }
        }
    }

    /// What is in the pipe now, without waiting for writers that are still alive.
    private static func drain(_ output: Int32, buffer: inout [UInt8], received: (ArraySlice<UInt8>) -> Void) {
        var fds = [pollfd(fd: output, events: Int16(POLLIN), revents: 0)]
        while poll(&fds, 1, 0) > 0 {
            let count = read(output, &buffer, buffer.count)
            guard count > 0 else { return }
            received(buffer[..<count])
        }
    }

    /// The command's status once it has ended; nil while it runs.
    private static func reap(_ pid: Int32) -> Outcome? {
        var status: Int32 = 0
        let result = waitpid(pid, &status, WNOHANG)
        guard result == pid else {
            // ECHILD: somebody else reaped it (nothing in hotplugd does); its status is lost.
            return result < 0 && errno == ECHILD ? .couldNotStart("waitpid: \(errorText(errno))") : nil
        }
        if status & 0x7f == 0 { return .exited((status >> 8) & 0xff) }
        return .signaled(status & 0x7f)
    }

    private static func errorText(_ code: Int32) -> String { String(cString: strerror(code)) }

    /// Descriptors of this run only: a failed close loses nothing that was not read.
    private static func closeOurs(_ fd: Int32) { _ = close(fd) }
}

/// Output bytes into lines, each at most `limit` bytes (UTF-8 repaired), longer ones cut with a
/// marker that says how much was left out.
struct LineSplitter {
    let limit: Int
    private var current: [UInt8] = []
    private var cut = 0

    init(limit: Int) { self.limit = limit }

    /// The lines that `bytes` completes.
    mutating func append(_ bytes: ArraySlice<UInt8>) -> [String] {
        var lines: [String] = []
        for byte in bytes {
            if byte == UInt8(ascii: "\n") {
                lines.append(take())
            } else if current.count < limit {
                current.append(byte)
            } else {
                cut += 1
            }
        }
        return lines
    }

    /// The last line, when the output did not end with a newline.
    mutating func finish() -> String? {
        current.isEmpty && cut == 0 ? nil : take()
    }

    private mutating func take() -> String {
        var text = String(decoding: current, as: UTF8.self)
        if cut > 0 { text += " [\(cut) more bytes not logged]" }
        current.removeAll(keepingCapacity: true)
        cut = 0
        return text
    }
}
