import Testing

@testable import HotplugCore

/// The shapes in which distributions ship rules that online hot-added devices.
@Suite struct UdevRuleCheckTests {
    @Test func oneLineRulesAsSUSEAndUbuntuShipThem() {
        let rules = """
            # 80-hotplug-cpu-mem.rules
            SUBSYSTEM=="cpu", ACTION=="add", CONST{arch}=="x86-64", TEST=="online", ATTR{online}=="0", ATTR{online}="1"
            SUBSYSTEM=="memory", ACTION=="add", PROGRAM="/bin/uname -p", RESULT!="s390*", \\
              ATTR{state}=="offline", ATTR{state}="online"
            """
        #expect(UdevRuleCheck.onlinedKinds(in: rules) == [.cpu, .memory])
    }

    @Test func sectionsThatOtherSubsystemsSkipAsRHELShipsThem() {
        let rules = """
            # CPU hotadd request
            SUBSYSTEM!="cpu", GOTO="cpu_online_end"
            ACTION!="add", GOTO="cpu_online_end"
            TEST=="online", ATTR{online}=="0", ATTR{online}="1"
            LABEL="cpu_online_end"

            # Memory hotadd request
            SUBSYSTEM!="memory", GOTO="memory_hotplug_end"
            ACTION!="add", GOTO="memory_hotplug_end"
            ENV{.state}="online"
            CONST{virt}=="none", ENV{.state}="online_movable"
            ATTR{state}=="offline", ATTR{state}="$env{.state}"
            LABEL="memory_hotplug_end"
            """
        #expect(UdevRuleCheck.onlinedKinds(in: rules) == [.cpu, .memory])
    }

    @Test func comparisonsOtherSubsystemsAndClosedSectionsAreNotOnlining() {
        let rules = """
            SUBSYSTEM=="memory", ACTION=="add", ATTR{state}=="offline", RUN+="/bin/logger offline"
            SUBSYSTEM=="block", ATTR{state}="running"
            # ATTR{online}="1" in a comment
            SUBSYSTEM!="memory", GOTO="memory_end"
            ENV{SEEN}="1"
            LABEL="memory_end"
            ATTR{online}="1"
            """
        #expect(UdevRuleCheck.onlinedKinds(in: rules).isEmpty)
    }
}
