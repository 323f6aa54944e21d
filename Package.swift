// swift-tools-version:6.0
import PackageDescription

// Swift 5 language mode for the modules that own threads: their classes are confined to one
// reactor loop by construction (see DESIGN.md), which the concurrency checker cannot see; the
// pure-value modules are checked in Swift 6 mode.
let loopConfined: [SwiftSetting] = [.swiftLanguageMode(.v5)]

let package = Package(
    name: "Turnpike",
    products: [
        .executable(name: "turnpike", targets: ["turnpike"]),
        .executable(name: "mqbench", targets: ["mqbench"]),
        .executable(name: "rulebench", targets: ["rulebench"]),
        .executable(name: "storegen", targets: ["storegen"]),
        .executable(name: "sessionbench", targets: ["sessionbench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.1.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.1.0"),
    ],
    targets: [
        .target(name: "CSystemShims"),
        .systemLibrary(
            name: "COpenSSL",
            pkgConfig: "openssl",
            providers: [.apt(["libssl-dev"])]),
        .systemLibrary(
            name: "CRocksDB",
            pkgConfig: "rocksdb",
            providers: [.apt(["librocksdb-dev"])]),
        .systemLibrary(
            name: "CCurl",
            pkgConfig: "libcurl",
            providers: [.apt(["libcurl4-openssl-dev"])]),
        .systemLibrary(
            name: "CRdKafka",
            pkgConfig: "rdkafka",
            providers: [.apt(["librdkafka-dev"])]),
        .systemLibrary(
            name: "CMicroHTTPD",
            pkgConfig: "libmicrohttpd",
            providers: [.apt(["libmicrohttpd-dev"])]),
        .systemLibrary(
            name: "CLibPQ",
            pkgConfig: "libpq",
            providers: [.apt(["libpq-dev"])]),
        .systemLibrary(
            name: "CNats",
            pkgConfig: "libnats",
            providers: [.apt(["libnats-dev"])]),
        .target(name: "MQTTCodec"),
        .target(name: "RuleEngine"),
        .target(
            name: "EventLoop",
            dependencies: ["CSystemShims", "COpenSSL"],
            swiftSettings: loopConfined),
        .target(name: "Storage", dependencies: ["CRocksDB"], swiftSettings: loopConfined),
        .target(
            name: "Broker",
            dependencies: [
                "MQTTCodec", "EventLoop", "COpenSSL", "RuleEngine", "Storage",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "DequeModule", package: "swift-collections"),
            ],
            swiftSettings: loopConfined),
        .target(
            name: "Bridges",
            dependencies: [
                "Broker", "EventLoop", "CCurl", "CRdKafka", "CLibPQ",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "DequeModule", package: "swift-collections"),
            ],
            swiftSettings: loopConfined),
        .target(
            name: "Cluster",
            dependencies: [
                "Broker", "EventLoop", "MQTTCodec", "CNats",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: loopConfined),
        // The admin listener: its HTTP threads are libmicrohttpd's, and it reaches the broker's
        // loop-confined state only through the loops' `execute` (Swift 5 mode, as above).
        .target(
            name: "Admin",
            dependencies: [
                "Broker", "EventLoop", "MQTTCodec", "RuleEngine", "CMicroHTTPD",
                .product(name: "Logging", package: "swift-log"),
            ],
            // The dashboard page, compiled in as bytes (PackageResources.dashboard_html).
            resources: [.embedInCode("Dashboard/dashboard.html")],
            swiftSettings: loopConfined),
        .executableTarget(
            name: "turnpike",
            dependencies: [
                "Admin", "Broker", "Bridges", "Cluster", "EventLoop", "MQTTCodec", "RuleEngine", "Storage",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "TOMLKit", package: "TOMLKit"),
            ],
            swiftSettings: loopConfined),
        .target(
            name: "MQTTClient",
            dependencies: ["MQTTCodec", "EventLoop"],
            swiftSettings: loopConfined),
        .executableTarget(
            name: "mqbench",
            dependencies: [
                "MQTTClient", "EventLoop", "MQTTCodec", "CSystemShims",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ],
            swiftSettings: loopConfined),
        .executableTarget(name: "rulebench", dependencies: ["RuleEngine"], path: "bench/rulebench"),
        .executableTarget(name: "storegen", dependencies: ["Broker"], path: "bench/storegen"),
        .executableTarget(
            name: "sessionbench",
            dependencies: ["Broker", "CSystemShims", .product(name: "Logging", package: "swift-log")],
            path: "bench/sessionbench",
            swiftSettings: loopConfined),
        .testTarget(name: "MQTTCodecTests", dependencies: ["MQTTCodec"]),
        .testTarget(name: "RuleEngineTests", dependencies: ["RuleEngine"]),
        .testTarget(name: "EventLoopTests", dependencies: ["EventLoop"], swiftSettings: loopConfined),
        .testTarget(name: "StorageTests", dependencies: ["Storage"], swiftSettings: loopConfined),
        .testTarget(name: "AdminTests", dependencies: ["Admin", "Broker"], swiftSettings: loopConfined),
        .testTarget(name: "BrokerTests", dependencies: ["Broker", "MQTTCodec", "EventLoop", "COpenSSL", "Storage"], swiftSettings: loopConfined),
        .testTarget(name: "ClusterTests", dependencies: ["Cluster"], swiftSettings: loopConfined),
    ]
)
