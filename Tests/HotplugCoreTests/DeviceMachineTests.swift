import Testing

@testable import HotplugCore

/// Traces recorded from the kernel's event order, replayed through the state machine.
@Suite struct DeviceMachineTests {
    /// Applies inputs in order and returns the states after each.
    static func replay(_ inputs: [DeviceInput], from start: DeviceState = .absent) -> [DeviceState] {
        var machine = DeviceMachine(state: start)
        return inputs.map {
            machine.apply($0); return machine.state
        }
    }

    @Test func hotAddedMemoryOnlinedByUs() {
        // add, our write, its success, then the kernel's KOBJ_ONLINE.
        let states = Self.replay([.event(.add), .onlineRequested, .onlineFinished(.succeeded), .event(.online)])
        #expect(states == [.offline, .onlining, .online, .online])
    }

    @Test func kernelAutoOnlineRacesOurWrite() {
        // The kernel's own online event overtakes our write's result; the result changes nothing.
        let states = Self.replay([.event(.add), .onlineRequested, .event(.online), .onlineFinished(.failed(errno: 22))])
        #expect(states == [.offline, .onlining, .online, .online])
    }

    @Test func hotAddedCPUThroughBindAndOnline() {
        let states = Self.replay([
            .event(.add), .event(.bind), .onlineRequested, .onlineFinished(.succeeded), .event(.online),
        ])
        #expect(states == [.offline, .offline, .onlining, .online, .online])
    }

    @Test func smtForbiddenThreadIsBlockedAndStaysBlocked() {
        let states = Self.replay([
            .event(.add), .onlineRequested, .onlineFinished(.blocked(errno: 1)), .event(.offline),
            .observed(.offline), .event(.change),
        ])
        #expect(states == [.offline, .onlining, .blocked, .blocked, .blocked, .blocked])
        var machine = DeviceMachine(state: .blocked)
        #expect(!machine.canRequestOnline)
        machine.apply(.event(.online))
        #expect(machine.state == .online, "an SMT change that onlines the thread is still believed")
    }

    @Test func removalOfAMovableDIMMBlock() {
        let states = Self.replay(
            [.event(.offline), .observed(.goingOffline), .event(.remove), .observed(.absent)], from: .online)
        #expect(states == [.offline, .offlining, .removed, .removed])
    }

    @Test func duplicateAndOutOfOrderEventsReportNoTransition() {
        var machine = DeviceMachine(state: .online)
        #expect(machine.apply(.event(.add)) == nil)
        #expect(machine.apply(.event(.online)) == nil)
        #expect(machine.apply(.observed(.online)) == nil)
        #expect(machine.state == .online)
    }

    @Test func staleReadingDuringOurWriteDoesNotUndoIt() {
        var machine = DeviceMachine(state: .onlining)
        #expect(machine.apply(.observed(.offline)) == nil)
        #expect(machine.state == .onlining)
    }

    @Test func readdAfterRemove() {
        let states = Self.replay([.event(.remove), .event(.add)], from: .online)
        #expect(states == [.removed, .offline])
    }

    @Test func writeToAVanishedDeviceMeansRemoved() {
        #expect(Self.replay([.onlineRequested, .onlineFinished(.gone)], from: .offline) == [.onlining, .removed])
        #expect(
            Self.replay([.onlineRequested, .onlineFinished(.failed(errno: 5))], from: .offline) == [.onlining, .failed])
    }

    @Test func unknownDeviceIsDiscoveredFromSysfs() {
        #expect(Self.replay([.observed(.offline)]) == [.offline])
        #expect(Self.replay([.observed(.absent)]) == [.absent])
        #expect(Self.replay([.observed(.online)]) == [.online])
    }

    @Test func transitionsNameBothEnds() {
        var machine = DeviceMachine(state: .offline)
        let transition = machine.apply(.onlineRequested)
        #expect(transition?.from == .offline)
        #expect(transition?.to == .onlining)
        #expect(transition?.description == "offline -> onlining")
    }

    @Test func attributeParsing() {
        #expect(ObservedState(attribute: "online\n") == .online)
        #expect(ObservedState(attribute: "1\n") == .online)
        #expect(ObservedState(attribute: "0") == .offline)
        #expect(ObservedState(attribute: "going-offline\n") == .goingOffline)
        #expect(ObservedState(attribute: "online_movable") == nil)
    }
}
