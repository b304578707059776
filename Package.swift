// swift-tools-version:6.0
import PackageDescription

// Layout (see docs/ARCHITECTURE.md):
//   CUV          libuv through pkg-config, plus static inline helpers (shim.h)
//   CLLHTTP      compiles Debian's llhttp 8.1 sources from /usr/share/llhttp
//   AVRProtocol  pure Swift, no I/O: parsers, encoders, codecs, state machines
//   AVRCore      libuv wrappers (Loop/) and the services built on them
//   AVRServer    the `avr-core` executable: configuration, logging, run
let package = Package(
    name: "avr-core",
    products: [
        .executable(name: "avr-core", targets: ["AVRServer"]),
    ],
    targets: [
        .systemLibrary(name: "CUV", pkgConfig: "libuv", providers: [.apt(["libuv1-dev"])]),
        .target(name: "CLLHTTP"),
        .target(name: "AVRProtocol"),
        .target(name: "AVRCore", dependencies: ["CUV", "CLLHTTP", "AVRProtocol"]),
        .executableTarget(name: "AVRServer", dependencies: ["AVRCore", "AVRProtocol"]),
        .testTarget(name: "AVRProtocolTests", dependencies: ["AVRProtocol"]),
        .testTarget(name: "AVRCoreTests", dependencies: ["AVRCore", "AVRProtocol", "CUV"]),
    ],
    swiftLanguageModes: [.v6]
)
