import HotplugCore
import PropertyBased
import Testing

/// Random input sequences, the way the engine drives the machine (an online request only when
/// it may be made, its outcome only after it): the machine never reaches a state its inputs
/// cannot explain, and a reading of sysfs always brings it to what sysfs says.
@Suite struct DeviceMachinePropertyTests {
    /// Inputs other than the engine's own request, which the model below makes when it may.
    static let inputs: [DeviceInput] =
        UeventAction.allCases.map { .event($0) }
        + [ObservedState.online, .offline, .goingOffline, .absent].map { .observed($0) }
        + [.succeeded, .blocked(errno: 1), .gone, .failed(errno: 5)].map { .onlineFinished($0) }

    @Test func everyStateIsExplainedByTheInputs() async {
        await propertyCheck(count: 500, input: Gen.int(in: 0...(Self.inputs.count)).array(of: 0...60)) { codes in
            var machine = DeviceMachine()
            var writeInFlight = false
            for code in codes {
                let input: DeviceInput
                if code == Self.inputs.count {
                    guard machine.canRequestOnline else { continue }
                    input = .onlineRequested
                } else {
                    input = Self.inputs[code]
                    if case .onlineFinished = input, !writeInFlight { continue }
                }
                let before = machine.state
                machine.apply(input)
                let after = machine.state

                switch input {
                case .onlineRequested:
                    writeInFlight = true
                    #expect(after == .onlining)
                case .onlineFinished(let outcome):
                    writeInFlight = false
                    if before == .onlining {
                        let expected: DeviceState =
                            switch outcome {
                            case .succeeded: .online
                            case .blocked: .blocked
                            case .gone: .removed
                            case .failed: .failed
                            }
                        #expect(after == expected)
                    } else {
                        #expect(after == before, "a late outcome must not undo what the kernel said since")
                    }
                case .event(.remove): #expect(after == .removed)
                case .event(.online): #expect(after == .online)
                case .event(.add): #expect(after == ([.absent, .removed].contains(before) ? .offline : before))
                case .event(.offline): #expect(after == ([.blocked, .failed].contains(before) ? before : .offline))
                case .event: #expect(after == before)
                case .observed(.online): #expect(after == .online)
                case .observed(.goingOffline): #expect(after == .offlining)
                case .observed(.absent): #expect(after == (before == .absent ? .absent : .removed))
                case .observed(.offline):
                    #expect(after == ([.blocked, .failed, .onlining].contains(before) ? before : .offline))
                }
                // `onlining` only while a write of ours is in flight.
                if after == .onlining { #expect(writeInFlight) }
            }
            // Whatever happened, one reading of sysfs settles it.
            for truth in [ObservedState.online, .goingOffline] {
                var settled = machine
                settled.apply(.observed(truth))
                #expect(settled.state == (truth == .online ? .online : .offlining))
            }
            var gone = machine
            gone.apply(.observed(.absent))
            #expect([.absent, .removed].contains(gone.state))
        }
    }
}
