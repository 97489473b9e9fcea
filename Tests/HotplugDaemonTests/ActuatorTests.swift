import Glibc
import HotplugCore
import HotplugFixtures
import HotplugSystem
import Testing

import struct SystemPackage.Errno

/// The one write path of the daemon and the commands, offline and under a time limit: every
/// answer the kernel gives, injected into the fake tree, and what the actuator makes of it. The
/// online answers are covered through the core's driver (`CoreDriverTests.theKernelsAnswer`).
@Suite struct ActuatorTests {
    let tree: FakeSysfsTree
    let kernel: FakeKernel

    init() throws {
        tree = try FakeSysfsTree()
        try tree.addCPU(0, online: nil)
        try tree.addCPU(2, online: true)
        try tree.addMemory(16, online: true, zones: "Movable")
        try tree.addMemory(17, online: false)
        kernel = try FakeKernel(tree: tree)
    }

    /// Four attempts, backoff from 10 us.
    static let retry = Actuator.Retry(attempts: 4, firstDelay: .microseconds(10), maxDelay: .microseconds(100))

    struct Answer: Sendable, CustomTestStringConvertible {
        let name: String
        let device: String
        /// The kernel's answers to the first writes (nil: that write succeeds).
        let answers: [Errno?]
        let outcome: OnlineOutcome
        let attempts: Int
        /// What the device reads afterwards.
        let state: String
        var testDescription: String { name }

        static let offline: [Answer] = [
            Answer(
                name: "EBUSY: retried with backoff until it goes through", device: "memory16",
                answers: [.resourceBusy, .resourceBusy], outcome: .succeeded, attempts: 3, state: "offline"),
            Answer(
                name: "EAGAIN: retried", device: "cpu2",
                answers: [.resourceTemporarilyUnavailable], outcome: .succeeded, attempts: 2, state: "0"),
            Answer(
                name: "ENOMEM: retried", device: "memory16",
                answers: [.noMemory], outcome: .succeeded, attempts: 2, state: "offline"),
            Answer(
                name: "EINTR without a time limit reached: retried at once", device: "cpu2",
                answers: [.interrupted], outcome: .succeeded, attempts: 2, state: "0"),
            Answer(
                name: "EBUSY every time: failed after 4 attempts", device: "memory16",
                answers: Array(repeating: .resourceBusy, count: 4), outcome: .failed(errno: EBUSY), attempts: 4,
                state: "online"),
            Answer(
                name: "EINVAL on a block already offline: success, read back", device: "memory17",
                answers: [.invalidArgument], outcome: .succeeded, attempts: 1, state: "offline"),
            Answer(
                name: "EINVAL on a block still online: failed", device: "memory16",
                answers: [.invalidArgument], outcome: .failed(errno: EINVAL), attempts: 1, state: "online"),
            Answer(
                name: "EPERM: blocked, not retried", device: "cpu2",
                answers: [.notPermitted], outcome: .blocked(errno: EPERM), attempts: 1, state: "1"),
            Answer(
                name: "ENODEV: gone", device: "cpu2",
                answers: [Errno(rawValue: ENODEV)], outcome: .gone, attempts: 1, state: "1"),
            Answer(
                name: "EIO: failed, not retried", device: "memory16",
                answers: [.ioError], outcome: .failed(errno: EIO), attempts: 1, state: "online"),
        ]
    }

    /// With a time limit, as the commands write, so that each attempt runs on its own thread.
    @Test(arguments: Answer.offline) func theKernelsAnswerToAnOffline(_ answer: Answer) {
        kernel.inject(answer.answers, into: answer.device)
        let actuator = Actuator(sysfs: kernel, retry: Self.retry, timeLimit: .seconds(5))
        let result = actuator.offline(DeviceID(name: answer.device)!)
        #expect(result.outcome == answer.outcome)
        #expect(result.attempts == answer.attempts)
        #expect(kernel.writes.count == answer.attempts)
        #expect(
            kernel.writes.allSatisfy { $0 == "\(answer.device)=\(answer.device.hasPrefix("cpu") ? "0" : "offline")" })
        #expect(tree.state(answer.device) == answer.state)
    }

    @Test func anOfflineRetriesEBUSYThenSucceedsWithoutATimeLimit() {
        kernel.inject([.resourceBusy], into: "memory16")
        let result = Actuator(sysfs: kernel, retry: Self.retry).offline(DeviceID(name: "memory16")!)
        #expect(result == Actuator.Result(outcome: .succeeded, attempts: 2))
        #expect(kernel.writes == ["memory16=offline", "memory16=offline"])
    }

    /// The kernel ends a slow offline with EINTR when the writer gets a signal; the time limit's
    /// signal makes that ETIMEDOUT, and the next attempt would take as long: none is made.
    @Test func aWriteOverItsTimeLimitTimesOutAndIsNotRetried() {
        kernel.delay("memory16", by: .seconds(30))
        let started = ContinuousClock.now
        let result = Actuator(sysfs: kernel, retry: Self.retry, timeLimit: .milliseconds(200))
            .offline(DeviceID(name: "memory16")!)
        #expect(ContinuousClock.now - started < .seconds(5))
        #expect(result == Actuator.Result(outcome: .failed(errno: ETIMEDOUT), attempts: 1))
        #expect(kernel.writes == ["memory16=offline"])
        #expect(tree.state("memory16") == "online")
    }

    @Test func anOnlineUnderATimeLimitIsClassifiedAsWithout() {
        kernel.inject([.resourceBusy], into: "memory17")
        let result = Actuator(sysfs: kernel, retry: Self.retry, timeLimit: .seconds(5))
            .online(DeviceID(name: "memory17")!, value: "online_movable")
        #expect(result == Actuator.Result(outcome: .succeeded, attempts: 2))
        #expect(tree.state("memory17") == "online")
    }
}
