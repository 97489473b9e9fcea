import Testing

@testable import HotplugCore

/// Which policies the kernel can carry out itself, and the settings each one needs.
@Suite struct MemoryOnliningTests {
    static let modern = KernelOnlineSupport(autoOnlineBlocks: true, onlinePolicy: true)
    static let before516 = KernelOnlineSupport(autoOnlineBlocks: true, onlinePolicy: false)

    static func memory(_ change: (inout Config.Memory) -> Void = { _ in }) -> Config.Memory {
        var memory = Config.Memory()
        change(&memory)
        return memory
    }

    @Test func theDefaultPolicyIsTheKernelsAutoMovableWithItsRatio() {
        let plan = MemoryOnlining.plan(Self.memory { $0.autoMovableRatio = 150 }, kernel: Self.modern)
        #expect(
            plan
                == .kernel(
                    KernelOnlineSettings([
                        .autoOnlineBlocks: "online", .onlinePolicy: "auto-movable", .autoMovableRatio: "150",
                        .autoMovableNUMAAware: "Y",
                    ])))
        #expect(plan.kernelValue == .online)
        #expect(
            plan.summary
                == "kernel (auto_online_blocks=online online_policy=auto-movable auto_movable_ratio=150 auto_movable_numa_aware=Y)"
        )
    }

    @Test(
        arguments: [
            (MemoryOnlineType.onlineKernel, "online_kernel", nil),
            (.onlineMovable, "online_movable", nil),
            (.online, "online", "contig-zones"),
        ] as [(MemoryOnlineType, String, String?)])
    func anExplicitTypeIsAutoOnlineBlocksAlone(type: MemoryOnlineType, value: String, policy: String?) {
        let plan = MemoryOnlining.plan(Self.memory { $0.onlineType = type }, kernel: Self.modern)
        var expected = KernelOnlineSettings([.autoOnlineBlocks: value])
        expected[.onlinePolicy] = policy
        #expect(plan == .kernel(expected))
        #expect(plan.kernelValue == OnlineValue(rawValue: value))
        // Without online_policy an explicit type still needs nothing else.
        #expect(MemoryOnlining.plan(Self.memory { $0.onlineType = type }, kernel: Self.before516).isKernel)
    }

    @Test func theSettingsAreWrittenWithAutoOnlineBlocksLast() {
        let settings = KernelOnlineSettings([
            .autoOnlineBlocks: "online", .onlinePolicy: "auto-movable", .autoMovableRatio: "301",
        ])
        #expect(settings.settings == [.onlinePolicy, .autoMovableRatio, .autoOnlineBlocks])
    }

    @Test func whatTheKernelCannotSayStaysInUserspaceWithItsReason() {
        let cases: [(Config.Memory, KernelOnlineSupport, String)] = [
            (Self.memory { $0.kernelOnline = false }, Self.modern, "memory.kernel_online is false"),
            (Self.memory { $0.autoOnline = false }, Self.modern, "memory.auto_online is false"),
            (Self.memory(), Self.before516, "no memory_hotplug.online_policy"),
            (
                Self.memory(), KernelOnlineSupport(autoOnlineBlocks: false, onlinePolicy: false),
                "no memory/auto_online_blocks"
            ),
            (
                Self.memory { $0.nodes = [.init(node: 1, onlineType: .onlineMovable)] }, Self.modern,
                "the memory.node rule for node 1 differs"
            ),
            (
                Self.memory { $0.nodes = [.init(node: 2, autoOnline: false)] }, Self.modern,
                "the memory.node rule for node 2 differs"
            ),
        ]
        for (memory, kernel, reason) in cases {
            let plan = MemoryOnlining.plan(memory, kernel: kernel)
            guard case .userspace(let said, _) = plan else {
                Issue.record("\(memory) gave \(plan)")
                continue
            }
            #expect(said.contains(reason), "\(said)")
            #expect(plan.kernelValue == nil)
        }
    }

    @Test func aNodeRuleThatSaysWhatMemorySaysIsNoObstacle() {
        let memory = Self.memory {
            $0.nodes = [.init(node: 0, autoOnline: true, onlineType: .autoMovable), .init(node: 1)]
        }
        #expect(MemoryOnlining.plan(memory, kernel: Self.modern).isKernel)
    }
}
