// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "hotplugd",
    products: [
        .executable(name: "hotplugd", targets: ["hotplugd"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
        // Without its Foundation trait: hooks need processes, not Data.
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/x-sheep/swift-property-based", from: "2.0.1"),
    ],
    targets: [
        // The one C module: the headers of libudev and libsystemd (libudev-dev, libsystemd-dev)
        // and what Swift cannot import itself.
        .target(
            name: "CHotplug",
            linkerSettings: [.linkedLibrary("udev"), .linkedLibrary("systemd")]
        ),
        // Pure logic: uevent decoding, device state machine, policy, configuration.
        .target(
            name: "HotplugCore",
            dependencies: [
                .product(name: "TOMLKit", package: "TOMLKit")
            ]
        ),
        // I/O: the sysfs tree (read, write, scan) and the libudev monitor thread.
        .target(
            name: "HotplugSystem",
            dependencies: [
                "HotplugCore",
                "CHotplug",
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
        // The daemon: joins events, state, policy and the actuator; logs transitions.
        .target(
            name: "HotplugDaemon",
            dependencies: [
                "HotplugCore",
                "HotplugSystem",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        .executableTarget(
            name: "hotplugd",
            dependencies: [
                "HotplugDaemon",
                "HotplugSystem",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            exclude: ["man"],
            // The release binary (the Swift runtime and Foundation linked in) is linked with the
            // toolchain's lld: GNU ld repeats glibc's link-time warning about `mktemp`, which
            // Foundation's temporary-file code references and hotplugd never calls; lld does not
            // act on such warning sections, and no other warning is lost.
            linkerSettings: [.unsafeFlags(["-use-ld=lld"], .when(configuration: .release))],
            plugins: ["VersionFromFile"]
        ),
        // `hotplugd --version` from the VERSION file, which the package and the man pages also read.
        .plugin(name: "VersionFromFile", capability: .buildTool()),
        .testTarget(
            name: "HotplugCoreTests",
            dependencies: [
                "HotplugCore", "HotplugFixtures", .product(name: "PropertyBased", package: "swift-property-based"),
            ]
        ),
        .testTarget(
            name: "HotplugDaemonTests",
            dependencies: [
                "HotplugDaemon", "HotplugSystem", "HotplugFixtures",
                .product(name: "PropertyBased", package: "swift-property-based"),
            ]
        ),
        // A sysfs tree of plain files and a fake kernel over it (fault injection), a log capture,
        // the small machine most tests start from: for the tests and the benchmarks.
        .target(
            name: "HotplugFixtures",
            dependencies: ["HotplugCore", "HotplugSystem", .product(name: "Logging", package: "swift-log")],
            path: "Tests/HotplugFixtures"),
        // `make fuzz`: libFuzzer targets over the uevent path and the configuration parser.
        .target(name: "FuzzTargets", dependencies: ["HotplugCore"], path: "Tests/Fuzz/Targets"),
        .executableTarget(name: "fuzz-uevent", dependencies: ["FuzzTargets"], path: "Tests/Fuzz/Uevent"),
        .executableTarget(name: "fuzz-config", dependencies: ["FuzzTargets"], path: "Tests/Fuzz/Config"),
        // `make bench`: the daemon's own costs, measured in process on a fake sysfs tree.
        .executableTarget(
            name: "hotplugd-bench",
            dependencies: ["HotplugDaemon", "HotplugSystem", "HotplugFixtures"],
            path: "Tests/Benchmarks/InProcess"
        ),
    ]
)
