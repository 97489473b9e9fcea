import Testing

@testable import HotplugCore

@Suite struct CPUPolicyTests {
    @Test func listsParseLikeTheKernelWritesThem() throws {
        #expect(try CPUList(parsing: "0-3,8,10-11").ranges == [0...3, 8...8, 10...11])
        #expect(try CPUList(parsing: "4,2,3").ranges == [2...4])
        #expect(try CPUList(parsing: "").ranges.isEmpty)
        #expect(try CPUList(parsing: "all").isAll)
        #expect(try CPUList(parsing: "0-3,8").description == "0-3,8")
        for bad in ["3-1", "a", "1,,2", "1-", "-1", "1-2-3", "12345678"] {
            #expect(throws: CPUListError.self, "\(bad)") { try CPUList(parsing: bad) }
        }
    }

    @Test(arguments: [
        // include, exclude, cpu, expected to online
        ("all", "", 7, true),
        ("0-3", "", 4, false),
        ("0-3", "", 3, true),
        ("all", "2,4-5", 4, false),
        ("all", "2,4-5", 6, true),
        ("0-7", "0-7", 1, false),
    ])
    func includeAndExclude(include: String, exclude: String, cpu: Int, online: Bool) throws {
        var config = Config.CPU()
        config.include = try CPUList(parsing: include)
        config.exclude = try CPUList(parsing: exclude)
        #expect((CPUPolicy(config: config).decide(cpu: cpu).onlineValue == .cpu) == online)
    }

    @Test func autoOnlineOffLeavesEverything() {
        var config = Config.CPU()
        config.autoOnline = false
        #expect(CPUPolicy(config: config).decide(cpu: 1) == .leave(reason: "cpu.auto_online is false"))
    }

    @Test func coldplugHonoursMaxcpus() {
        #expect(ColdplugMode.auto.allows(.cpu, kernelCommandLine: "console=ttyS0 root=/dev/vda"))
        #expect(!ColdplugMode.auto.allows(.cpu, kernelCommandLine: "console=ttyS0 maxcpus=2 quiet"))
        #expect(ColdplugMode.auto.allows(.memory, kernelCommandLine: "maxcpus=2"))
        #expect(ColdplugMode.always.allows(.cpu, kernelCommandLine: "maxcpus=2"))
        #expect(!ColdplugMode.never.allows(.memory, kernelCommandLine: ""))
    }
}
