import Dispatch
import HotplugSystem
import Logging

/// Writes the metrics file on a thread of its own, so that a write stuck on a slow or hung
/// filesystem holds up neither event handling, nor the watchdog, nor a stop.
///
/// Texts submitted while a write is in progress are coalesced: when the thread is free it writes
/// the newest one only. A write that outlasts `limit` is logged once (again only after a write
/// has been quick), and `stop` waits for the last write at most `limit`.
final class MetricsWriter: Sendable {
    typealias Write = @Sendable (String) throws -> Void

    private struct State {
        /// The newest text not yet handed to a write.
        var pending: String?
        /// Counts writes; `writing` is the one in progress.
        var started = 0
        var writing: Int?
        var stopping = false
        var finished = false
        /// What a stop waits with, until called.
        var done: (@Sendable (Bool) -> Void)?
        /// The write last logged as slow, until a write is quick again.
        var reportedSlow: Int?
        var lastError: String?
    }

    let limit: Duration
    let path: String
    private let logger: Logger
    private let write: Write
    private let state = Locked(State())
    private let wake = DispatchSemaphore(value: 0)
    /// The time limits' timers: a serial queue of its own gets a thread even when the global
    /// queues' are all taken.
    private let timers = DispatchQueue(label: "hotplugd.metrics-writer")

    /// `write` does the writing (`DaemonMetrics.write`); `path` names the file in messages.
    init(path: String, limit: Duration = .seconds(5), logger: Logger, write: @escaping Write) throws(DaemonError) {
        self.path = path
        self.limit = limit
        self.logger = logger
        self.write = write
        // Never joined: a write stuck in the kernel must not keep the daemon from exiting.
        try DedicatedThread { [self] in run() }.detach()
    }

    /// Hands `text` to the thread; it replaces any text still waiting.
    func submit(_ text: String) {
        state.withLock { $0.pending = text }
        wake.signal()
    }

    /// Whether a write is in progress or waiting.
    var isBusy: Bool { state.withLock { $0.writing != nil || $0.pending != nil } }

    /// Lets the thread write what is waiting, then end; returns when it has, or after `limit`
    /// (then it says so, and the thread is left to its stuck write).
    func stop() async {
        await withCheckedContinuation { continuation in stop { _ in continuation.resume() } }
    }

    /// `stop` without waiting: `done` is called once, with true when the thread has ended, or with
    /// false after `limit`. A second stop waits for nothing: `done` says whether the thread ended.
    func stop(_ done: @escaping @Sendable (Bool) -> Void) {
        let (ended, again) = state.withLock { state in
            let again = state.stopping
            state.stopping = true
            if !again { state.done = done }
            return (state.finished, again)
        }
        if again {
            done(ended)
            return
        }
        wake.signal()
        if ended { finish(ended: true) }
        timers.asyncAfter(deadline: limitFromNow) { [self] in
            finish(ended: false)
        }
    }

    private var limitFromNow: DispatchTime { .now() + .nanoseconds(Int(limit / .nanoseconds(1))) }

    /// Calls the stop's `done`, the first time only.
    private func finish(ended: Bool) {
        let taken = state.withLock { state in
            let done = state.done
            state.done = nil
            return done
        }
        guard let done = taken else { return }
        if !ended {
            logger.warning(
                "stopping without the last metrics write, which has not returned",
                metadata: ["path": "\(path)", "limit": "\(limit)"])
        }
        done(ended)
    }

    private func run() {
        while true {
            wake.wait()
            let next: (text: String, number: Int)? = state.withLock { state in
                guard let text = state.pending else {
                    if state.stopping { state.finished = true }
                    return nil
                }
                state.pending = nil
                state.started += 1
                state.writing = state.started
                return (text, state.started)
            }
            guard let next else {
                if state.withLock({ $0.finished }) {
                    finish(ended: true)
                    return
                }
                continue
            }
            perform(next.text, number: next.number)
            // Whatever came during the write, and a stop, are seen at the next turn.
            wake.signal()
        }
    }

    private func perform(_ text: String, number: Int) {
        let start = ContinuousClock.now
        timers.asyncAfter(deadline: limitFromNow) {
            [self] in
            let report = state.withLock { state in
                guard state.writing == number, state.reportedSlow == nil else { return false }
                state.reportedSlow = number
                return true
            }
            if report {
                logger.warning(
                    "a metrics file write has not returned within its time limit; newer figures wait for it",
                    metadata: ["path": "\(path)", "limit": "\(limit)"])
            }
        }
        var failure: String?
        do {
            try write(text)
        } catch {
            failure = "\(error)"
        }
        let took = ContinuousClock.now - start
        let (lastError, wasReported) = state.withLock { state in
            defer {
                state.writing = nil
                state.lastError = failure
                // Quick again: the next slow write is worth a line of its own.
                if took < limit { state.reportedSlow = nil }
            }
            return (state.lastError, state.reportedSlow == number)
        }
        if wasReported {
            logger.notice("the slow metrics file write returned", metadata: ["path": "\(path)", "took": "\(took)"])
        }
        if let failure {
            // Once per distinct error, not once per second.
            if failure != lastError {
                logger.error("cannot write the metrics file", metadata: ["path": "\(path)", "error": "\(failure)"])
            }
        } else if lastError != nil {
            logger.notice("metrics file written again", metadata: ["path": "\(path)"])
        }
    }
}
