// swift-tools-version:6.0
import PackageDescription

// Layout (see docs/ARCHITECTURE.md):
//   CUV          libuv through pkg-config, plus static inline helpers (shim.h)
//   CLLHTTP      compiles Debian's llhttp 8.1 sources from /usr/share/llhttp
//   COpenSSL     OpenSSL 3 (libssl-dev) through pkg-config; only CTLS includes it
//   CTLS         a TLS client on memory buffers (no sockets, no threads); opaque types only
//   CSpeexDSP    libspeexdsp's echo canceller (libspeexdsp-dev) through pkg-config
//   AVRProtocol  pure Swift, no I/O: parsers, encoders, codecs, state machines
//   AVRCore      libuv wrappers (Loop/) and the services built on them
//   AVRServer    the `avr-core` executable: configuration, logging, run
let package = Package(
    name: "avr-core",
    products: [
        .executable(name: "avr-core", targets: ["AVRServer"]),
    ],
    dependencies: [
        // Observability: logging API, metrics API, Prometheus exposition.
        .package(url: "https://github.com/apple/swift-log", exact: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", exact: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", exact: "2.4.1"),
    ],
    targets: [
        .systemLibrary(name: "CUV", pkgConfig: "libuv", providers: [.apt(["libuv1-dev"])]),
        .target(name: "CLLHTTP"),
        // hiredis 0.14 (Debian libhiredis-dev) and its libuv adapter, behind a narrow C face.
        .target(name: "CHiredis", linkerSettings: [.linkedLibrary("hiredis")]),
        .systemLibrary(name: "COpenSSL", pkgConfig: "openssl", providers: [.apt(["libssl-dev"])]),
        .target(name: "CTLS", dependencies: ["COpenSSL"], linkerSettings: [.linkedLibrary("ssl"), .linkedLibrary("crypto")]),
        // speexdsp's acoustic echo canceller (pipeline barge-in, docs/VAD.md), opaque state only.
        .systemLibrary(name: "CSpeexDSP", pkgConfig: "speexdsp", providers: [.apt(["libspeexdsp-dev"])]),
        .target(name: "AVRProtocol"),
        .target(name: "AVRCore", dependencies: [
            "CUV", "CLLHTTP", "CHiredis", "CTLS", "CSpeexDSP", "AVRProtocol",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "CoreMetrics", package: "swift-metrics"),
            .product(name: "Prometheus", package: "swift-prometheus"),
        ]),
        .executableTarget(name: "AVRServer", dependencies: ["AVRCore", "AVRProtocol"]),
        .testTarget(name: "AVRProtocolTests", dependencies: ["AVRProtocol"]),
        .testTarget(name: "AVRCoreTests", dependencies: ["AVRCore", "AVRProtocol", "CUV"]),
    ],
    swiftLanguageModes: [.v6]
)

// MARK: - bench: the load harness, the floor reference and micro-benchmarks.
// Added as one block; nothing above is changed. Sources live under bench/Sources.
package.targets += [
    .target(name: "AVRBenchSupport", dependencies: ["AVRProtocol"], path: "bench/Sources/AVRBenchSupport"),
    .executableTarget(name: "AVRLoadGen", dependencies: ["AVRBenchSupport", "AVRCore", "AVRProtocol"],
                      path: "bench/Sources/AVRLoadGen"),
    .executableTarget(name: "AVRBenchSTS", dependencies: ["AVRBenchSupport", "AVRCore", "AVRProtocol"],
                      path: "bench/Sources/AVRBenchSTS"),
    .executableTarget(name: "AVRFloor", dependencies: ["AVRBenchSupport", "AVRCore", "AVRProtocol"],
                      path: "bench/Sources/AVRFloor"),
    .executableTarget(name: "AVRMicroBench", dependencies: ["AVRBenchSupport", "AVRCore", "AVRProtocol"],
                      path: "bench/Sources/AVRMicroBench"),
]
package.products += [
    .executable(name: "avr-loadgen", targets: ["AVRLoadGen"]),
    .executable(name: "avr-bench-sts", targets: ["AVRBenchSTS"]),
    .executable(name: "avr-floor", targets: ["AVRFloor"]),
    .executable(name: "avr-microbench", targets: ["AVRMicroBench"]),
]

// MARK: - fuzz: libFuzzer targets, one executable for all of them (`make fuzz`).
// Only present when AVR_FUZZ is set, so normal builds and `swift test` never see it.
// Sources live under Tests/Fuzz/AVRFuzz; seeds under Tests/Fuzz/corpus/<target>.
if Context.environment["AVR_FUZZ"] != nil {
    package.targets += [
        .executableTarget(name: "AVRFuzz", dependencies: ["AVRCore", "AVRProtocol"],
                          path: "Tests/Fuzz/AVRFuzz"),
    ]
    package.products += [
        .executable(name: "avr-fuzz", targets: ["AVRFuzz"]),
    ]
}

// MARK: - linker: lld, which ships with the Swift toolchain, on Linux.
// The toolchain's default there, gold, warns "Cannot export local symbol '__asan_report_*_asm'"
// for every AddressSanitizer link (the sanitizer runtime's export list names symbols it keeps
// local): hundreds of lines in `make test` that hid real messages. lld links the same
// objects without them. Applied last, so the fuzz target gets it too.
for target in package.targets where target.type != .system {
    target.linkerSettings = (target.linkerSettings ?? []) + [.unsafeFlags(["-use-ld=lld"], .when(platforms: [.linux]))]
}
