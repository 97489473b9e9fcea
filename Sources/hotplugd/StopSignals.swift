import Glibc
import Synchronization

/// SIGINT and SIGTERM for `offline` and `online`: taken as a request to stop before the next
/// device (the write in progress ends on its own or at its time limit), so that what was changed
/// is put back instead of the process dying half-way.
enum StopSignals {
    /// The signal received, 0 while none.
    private static let received = Atomic<Int32>(0)

    /// Catches both signals from now on. SA_RESTART: a write in progress is not cut short by it.
    static func trap() {
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { signal in StopSignals.received.store(signal, ordering: .relaxed) }
        action.sa_flags = SA_RESTART
        sigemptyset(&action.sa_mask)
        for signal in [SIGINT, SIGTERM] { sigaction(signal, &action, nil) }
    }

    /// The signal that asked to stop, if any.
    static var stop: Int32? {
        let signal = received.load(ordering: .relaxed)
        return signal == 0 ? nil : signal
    }
}
