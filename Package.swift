// swift-tools-version:6.0
import PackageDescription

/// One settings array for every target (compare swift-nio's and grpc-swift-2's Package.swift).
let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "selfimprove",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "selfimprove", targets: ["selfimprove"]),
        .library(name: "ActorCluster", targets: ["ActorCluster"]),
        .library(name: "SelfImproveCore", targets: ["SelfImproveCore"]),
        .library(name: "Backends", targets: ["Backends"]),
        .library(name: "Verifiers", targets: ["Verifiers"]),
        .library(name: "ZeroMQ", targets: ["ZeroMQ"]),
        .library(name: "Wire", targets: ["Wire"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-protobuf.git", exact: "1.39.0"),
        .package(url: "https://github.com/apple/swift-log.git", exact: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", exact: "2.13.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", exact: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams.git", exact: "6.2.2"),
        .package(url: "https://github.com/swift-server/async-http-client.git", exact: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio.git", exact: "2.101.3"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", exact: "2.4.1"),
    ],
    targets: [
        // glibc's <malloc.h> (mallopt), for node processes' arena cap.
        .systemLibrary(name: "CMalloc"),
        .systemLibrary(
            name: "CZeroMQ",
            pkgConfig: "libzmq",
            providers: [.apt(["libzmq3-dev"])]
        ),
        .target(
            name: "ZeroMQ",
            dependencies: [
                "CZeroMQ",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "Wire",
            dependencies: [.product(name: "SwiftProtobuf", package: "swift-protobuf")],
            exclude: ["Generated/protos.sha256"],
            swiftSettings: strict
        ),
        .target(
            name: "ActorCluster",
            dependencies: [
                "ZeroMQ",
                "Wire",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "SelfImproveCore",
            swiftSettings: strict
        ),
        .target(
            name: "Backends",
            dependencies: [
                "SelfImproveCore",
                "ProcessSupervision",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "Verifiers",
            dependencies: ["SelfImproveCore", "Backends"],
            swiftSettings: strict
        ),
        .target(
            name: "ClusterNodes",
            dependencies: [
                "SelfImproveCore", "Backends", "Verifiers", "ActorCluster", "Wire",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "ProcessSupervision",
            dependencies: [.product(name: "Logging", package: "swift-log")],
            swiftSettings: strict
        ),
        // The self-improvement loop as a library: the rounds driver, the launcher of a cluster's
        // processes, training jobs and round files.
        .target(
            name: "Rounds",
            dependencies: [
                "Backends",
                "ClusterNodes",
                "ProcessSupervision",
                "SelfImproveCore",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // What the command line's subcommands share: logging and config options, stop signals,
        // JSON lines, launching peers.
        .target(
            name: "CommandLineSupport",
            dependencies: [
                "ClusterNodes",
                "ProcessSupervision",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // `selfimprove bench`: the benchmarks, each printing JSON for comparison across commits.
        .target(
            name: "Benchmarks",
            dependencies: [
                "ActorCluster",
                "Backends",
                "ClusterNodes",
                "CommandLineSupport",
                "ProcessSupervision",
                "Rounds",
                "SelfImproveCore",
                "Verifiers",
                "Wire",
                "ZeroMQ",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // `selfimprove k8s` and `slurm`: manifests and batch scripts generated from a config.
        .target(
            name: "Deployment",
            dependencies: ["ClusterNodes"],
            swiftSettings: strict
        ),
        // `selfimprove report`: a run's or a rounds folder's figures as one HTML page.
        .target(
            name: "RunReport",
            dependencies: ["Rounds", "SelfImproveCore"],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "selfimprove",
            dependencies: [
                "ActorCluster",
                "Benchmarks",
                "CommandLineSupport",
                "Deployment",
                "RunReport",
                "Rounds",
                "CMalloc",
                "Backends",
                "ClusterNodes",
                "ProcessSupervision",
                "SelfImproveCore",
                "Verifiers",
                "ZeroMQ",
                "Wire",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "SelfImproveCoreTests",
            dependencies: ["SelfImproveCore"],
            swiftSettings: strict
        ),
        // A scripted HTTP server that tests use to play model servers (not shipped).
        .target(
            name: "ScriptedHTTPServer",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            path: "Tests/Support/ScriptedHTTPServer",
            swiftSettings: strict
        ),
        // Helpers several test targets share (not shipped).
        .target(
            name: "TestLogs",
            dependencies: [.product(name: "Logging", package: "swift-log")],
            path: "Tests/Support/TestLogs",
            swiftSettings: strict
        ),
        .target(
            name: "TestFiles",
            path: "Tests/Support/TestFiles",
            swiftSettings: strict
        ),
        // Builds the C verifier node (peers/c-verifier) for the tests that run it (not shipped).
        .target(
            name: "CVerifierBuild",
            dependencies: ["TestFiles"],
            path: "Tests/Support/CVerifierBuild",
            swiftSettings: strict
        ),
        .testTarget(
            name: "BackendsTests",
            dependencies: [
                "Backends", "SelfImproveCore", "ScriptedHTTPServer", "TestFiles",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "VerifiersTests",
            dependencies: ["Verifiers", "SelfImproveCore", "Backends", "Wire", "CVerifierBuild", .product(name: "Logging", package: "swift-log"),
                           .product(name: "SwiftProtobuf", package: "swift-protobuf")],
            swiftSettings: strict
        ),
        .testTarget(
            name: "ClusterNodesTests",
            dependencies: ["ClusterNodes", "SelfImproveCore", "Backends", "Verifiers", "ActorCluster", "Wire", "TestLogs", "TestFiles", .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                           .product(name: "Prometheus", package: "swift-prometheus"), .product(name: "Metrics", package: "swift-metrics")],
            swiftSettings: strict
        ),
        .testTarget(
            name: "CommandLineTests",
            dependencies: ["ProcessSupervision", "ScriptedHTTPServer", "Backends", "SelfImproveCore", "ZeroMQ", "CVerifierBuild",
                           "ActorCluster", "ClusterNodes", "Wire", "TestLogs", "TestFiles"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "ZeroMQTests",
            dependencies: ["ZeroMQ"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "ActorClusterTests",
            dependencies: [
                "ActorCluster",
                "ProcessSupervision",
                "ZeroMQ",
                "Wire",
                "CVerifierBuild",
                "TestLogs",
                "TestFiles",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
    ]
)
